"""The scheduled cleanup jobs: both files parse, and the exact ``insight`` command in each runs.

The command line is taken from the file, never retyped here; only the
deployment-specific values (bucket URI, keys, endpoint) are filled in. It runs
with ``--dry-run`` against a moto server that checks the cleaner's IAM policy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import string
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.core import set_initial_no_auth_action_count

from pytest_insight.core.storage import open_storage
from tests.conftest import build_session

INFRA = Path(__file__).parent.parent / "infra"
WORKFLOW = INFRA / "github" / "cleanup.yml"
CRONJOB = INFRA / "k8s" / "cleanup-cronjob.yaml"
BIN = Path(sys.executable).parent
CRON = re.compile(r"^(\S+\s+){4}\S+$")


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _workflow_step() -> tuple[dict[str, str], str]:
    """The cleanup step's environment (job and step) and its ``run`` line."""
    job = _load(WORKFLOW)["jobs"]["clear"]
    (step,) = [s for s in job["steps"] if "insight clear" in s.get("run", "")]
    return {**job.get("env", {}), **step.get("env", {})}, step["run"].strip()


def _container() -> dict[str, Any]:
    spec = _load(CRONJOB)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "clear"]
    return dict(container)


def test_the_workflow_runs_on_a_schedule_with_the_cleaner_keys() -> None:
    workflow: dict[Any, Any] = _load(WORKFLOW)
    # YAML 1.1 reads a bare `on` as true
    triggers: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    (schedule,) = triggers["schedule"]
    assert CRON.match(schedule["cron"])
    assert workflow["permissions"] == {"contents": "read"}
    env, run = _workflow_step()
    assert "\n" not in run
    assert env["AWS_ACCESS_KEY_ID"] == "${{ secrets.INSIGHT_CLEANER_ACCESS_KEY_ID }}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.INSIGHT_CLEANER_SECRET_ACCESS_KEY }}"
    assert shlex.split(run)[:2] == ["insight", "clear"]
    assert {"--storage", "--older-than", "--yes"} <= set(shlex.split(run))


def test_the_cronjob_runs_one_at_a_time_unprivileged_with_the_cleaner_secret() -> None:
    cronjob = _load(CRONJOB)
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    assert CRON.match(cronjob["spec"]["schedule"])
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = _container()
    assert container["envFrom"] == [{"secretRef": {"name": "pytest-insight-cleaner"}}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    command = container["command"]
    assert Path(command[0]).name == "insight"
    assert command[1] == "clear"
    assert {"--storage", "--older-than", "--yes"} <= set(command)


def _github_expression(value: str, context: dict[str, str]) -> str:
    """Fill ``${{ vars.X }}`` / ``${{ secrets.X }}``; any other expression fails the test."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in context, f"{WORKFLOW.name}: no test value for ${{{{ {name} }}}}"
        return context[name]

    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", fill, str(value))


def _kubernetes_expand(argument: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command arguments."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), argument)


@pytest.fixture
def bucket_with_old_and_new(moto_server_s3: Any) -> tuple[Any, dict[str, str]]:
    """A team prefix with one old and one new session, and a cleaner user (keys) for it."""
    storage = open_storage(f"s3://{moto_server_s3.bucket}/team", endpoint_url=moto_server_s3.endpoint_url)
    now = datetime.now(UTC)
    storage.save_sessions(
        [
            build_session("old-run", sut_name="api", start=now - timedelta(days=200)),
            build_session("new-run", sut_name="api", start=now - timedelta(hours=1)),
        ]
    )
    iam = boto3.client("iam", endpoint_url=moto_server_s3.endpoint_url, region_name="us-east-1")
    text = (INFRA / "policies" / "cleaner.json").read_text(encoding="utf-8")
    document = string.Template(text).substitute(BucketName=moto_server_s3.bucket, Prefix="team")
    name = f"cleaner-{uuid.uuid4().hex[:8]}"
    arn = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return moto_server_s3, {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def _run_as_cleaner(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    done = set_initial_no_auth_action_count(0)(run)()
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _check_dry_run(result: dict[str, Any], target: Any) -> None:
    assert result["dry_run"] is True
    assert [s["session_id"] for s in result["sessions"]] == ["old-run"]
    assert result["cleared"] == 0
    assert len(target.keys("team/")) == 2  # a dry run removes nothing


def test_the_workflow_command_runs(bucket_with_old_and_new: tuple[Any, dict[str, str]]) -> None:
    target, cleaner = bucket_with_old_and_new
    env, run = _workflow_step()
    context = {
        "vars.INSIGHT_BUCKET": target.bucket,
        "vars.INSIGHT_PREFIX": "team",
        "vars.INSIGHT_REGION": "us-east-1",
        "secrets.INSIGHT_CLEANER_ACCESS_KEY_ID": cleaner["AWS_ACCESS_KEY_ID"],
        "secrets.INSIGHT_CLEANER_SECRET_ACCESS_KEY": cleaner["AWS_SECRET_ACCESS_KEY"],
    }
    step_env = {name: _github_expression(value, context) for name, value in env.items()}
    full_env = {**os.environ, **step_env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = _run_as_cleaner(["bash", "-e", "-c", f"{run} --dry-run"], full_env)
    _check_dry_run(result, target)
    assert result["storage"] == f"s3://{target.bucket}/team"


def test_the_cronjob_command_runs(bucket_with_old_and_new: tuple[Any, dict[str, str]]) -> None:
    target, cleaner = bucket_with_old_and_new
    container = _container()
    env = {item["name"]: str(item["value"]) for item in container["env"]}
    env["INSIGHT_STORAGE"] = f"s3://{target.bucket}/team"  # the deployment's own value
    env.update(cleaner)  # from the Secret, in the cluster
    command = [_kubernetes_expand(argument, env) for argument in container["command"]]
    command[0] = str(BIN / "insight")  # the same console script, installed here
    result = _run_as_cleaner([*command, "--dry-run"], {**os.environ, **env})
    _check_dry_run(result, target)
