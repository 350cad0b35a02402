"""CI context: tags read from the variables of GitHub Actions, GitLab CI and Jenkins."""

from __future__ import annotations

import pytest

from pytest_insight.plugin.ci_context import ci_tags


def test_outside_ci_there_are_no_tags() -> None:
    assert ci_tags({"HOME": "/home/dev", "CI": ""}) == {}


def test_github_actions_push() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "9f2c1e0",
        "GITHUB_REF_NAME": "main",
        "GITHUB_HEAD_REF": "",
        "GITHUB_RUN_ID": "123456",
        "GITHUB_SERVER_URL": "https://github.com/",
        "GITHUB_REPOSITORY": "acme/shop",
    }
    assert ci_tags(env) == {
        "ci": "github-actions",
        "commit": "9f2c1e0",
        "branch": "main",
        "ci_run_id": "123456",
        "ci_run_url": "https://github.com/acme/shop/actions/runs/123456",
    }


def test_github_pull_request_uses_the_head_branch() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "17/merge", "GITHUB_HEAD_REF": "fix-login"}
    assert ci_tags(env) == {"ci": "github-actions", "branch": "fix-login"}


def test_gitlab_ci() -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": "abc123",
        "CI_COMMIT_REF_NAME": "release/2.0",
        "CI_PIPELINE_ID": "777",
        "CI_PIPELINE_URL": "https://gitlab.example/acme/shop/-/pipelines/777",
        "CI_JOB_URL": "https://gitlab.example/acme/shop/-/jobs/9",
    }
    assert ci_tags(env) == {
        "ci": "gitlab-ci",
        "commit": "abc123",
        "branch": "release/2.0",
        "ci_run_id": "777",
        "ci_run_url": "https://gitlab.example/acme/shop/-/pipelines/777",
        "ci_job_url": "https://gitlab.example/acme/shop/-/jobs/9",
    }


@pytest.mark.parametrize(
    ("branch_vars", "branch"),
    [
        ({"GIT_BRANCH": "origin/develop"}, "develop"),
        ({"BRANCH_NAME": "PR-12", "GIT_BRANCH": "origin/feature"}, "PR-12"),
    ],
)
def test_jenkins(branch_vars: dict[str, str], branch: str) -> None:
    env = {
        "JENKINS_URL": "https://jenkins.example/",
        "GIT_COMMIT": "deadbeef",
        "BUILD_ID": "88",
        "BUILD_URL": "https://jenkins.example/job/shop/88/",
        **branch_vars,
    }
    assert ci_tags(env) == {
        "ci": "jenkins",
        "commit": "deadbeef",
        "branch": branch,
        "ci_run_id": "88",
        "ci_run_url": "https://jenkins.example/job/shop/88/",
    }


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_RUN_ID", "JENKINS_URL", "JENKINS_HOME", "BUILD_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_SHA", "cafe")
    assert ci_tags() == {"ci": "gitlab-ci", "commit": "cafe"}
