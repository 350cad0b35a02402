"""The CI run a pytest session belongs to, read from the CI's environment variables.

Recognised services and where each tag comes from:

- GitHub Actions (``ci=github-actions``): ``commit`` from ``GITHUB_SHA``,
  ``branch`` from ``GITHUB_HEAD_REF`` (pull requests) or ``GITHUB_REF_NAME``,
  ``ci_run_id`` from ``GITHUB_RUN_ID``, ``ci_run_url`` built as
  ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``.
- GitLab CI (``ci=gitlab-ci``): ``CI_COMMIT_SHA``, ``CI_COMMIT_REF_NAME``,
  ``CI_PIPELINE_ID``, ``CI_PIPELINE_URL`` (``ci_run_url``) and ``CI_JOB_URL``
  (``ci_job_url``).
- Jenkins (``ci=jenkins``): ``GIT_COMMIT``, ``BRANCH_NAME`` or ``GIT_BRANCH``,
  ``BUILD_ID`` (or ``BUILD_NUMBER``) and ``BUILD_URL``.

Empty or unset variables give no tag. Jenkins' ``GIT_BRANCH`` loses its
``origin/`` prefix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

__all__ = ["ci_tags"]


def ci_tags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the tags that describe the CI run in ``environ``.

    Args:
        environ: the environment to read; ``os.environ`` when None.

    Returns:
        The tags ``ci``, ``commit``, ``branch``, ``ci_run_id``, ``ci_run_url``
        (and ``ci_job_url`` on GitLab) that have a value; an empty dict
        outside a recognised CI service.
    """
    env = os.environ if environ is None else environ
    for detect, read in _SERVICES:
        if detect(env):
            return {key: value for key, value in read(env).items() if value}
    return {}


def _get(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def _is_github(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true" or bool(_get(env, "GITHUB_RUN_ID"))


def _github(env: Mapping[str, str]) -> dict[str, str]:
    run_id = _get(env, "GITHUB_RUN_ID")
    server = _get(env, "GITHUB_SERVER_URL").rstrip("/")
    repository = _get(env, "GITHUB_REPOSITORY")
    url = f"{server}/{repository}/actions/runs/{run_id}" if server and repository and run_id else ""
    return {
        "ci": "github-actions",
        "commit": _get(env, "GITHUB_SHA"),
        # on pull requests GITHUB_REF_NAME is "<number>/merge"; the head ref is the branch
        "branch": _get(env, "GITHUB_HEAD_REF", "GITHUB_REF_NAME"),
        "ci_run_id": run_id,
        "ci_run_url": url,
    }


def _is_gitlab(env: Mapping[str, str]) -> bool:
    return env.get("GITLAB_CI") == "true" or bool(_get(env, "CI_PIPELINE_ID"))


def _gitlab(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "ci": "gitlab-ci",
        "commit": _get(env, "CI_COMMIT_SHA"),
        "branch": _get(env, "CI_COMMIT_REF_NAME"),
        "ci_run_id": _get(env, "CI_PIPELINE_ID"),
        "ci_run_url": _get(env, "CI_PIPELINE_URL", "CI_JOB_URL"),
        "ci_job_url": _get(env, "CI_JOB_URL"),
    }


def _is_jenkins(env: Mapping[str, str]) -> bool:
    return bool(_get(env, "JENKINS_URL", "JENKINS_HOME")) or bool(_get(env, "BUILD_URL"))


def _jenkins(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "ci": "jenkins",
        "commit": _get(env, "GIT_COMMIT"),
        "branch": _get(env, "BRANCH_NAME", "GIT_BRANCH").removeprefix("origin/"),
        "ci_run_id": _get(env, "BUILD_ID", "BUILD_NUMBER"),
        "ci_run_url": _get(env, "BUILD_URL"),
    }


_Env = Mapping[str, str]
_SERVICES: tuple[tuple[Callable[[_Env], bool], Callable[[_Env], dict[str, str]]], ...] = (
    (_is_github, _github),
    (_is_gitlab, _gitlab),
    (_is_jenkins, _jenkins),
)
