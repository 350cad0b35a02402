"""The three least-privilege policies: the same documents in the template and in JSON, and enforced.

Enforcement uses moto's IAM access control: ``set_initial_no_auth_action_count(0)``
makes every request after it authenticate with real IAM access keys and pass
the user's attached policies. moto's gaps are worked around or named here,
never hidden, and the tests under "moto's IAM, as we rely on it" fail when
moto changes under us:

- moto ignores ``StringLike`` and ``Null`` conditions, so the ``s3:prefix``
  limit on listing and the ``s3:if-none-match`` requirement on puts are
  checked as documents (below), not enforced;
- moto authorises ``DeleteObjects`` against the bucket's ARN instead of each
  key's (AWS checks ``s3:DeleteObject`` per key): :func:`per_key_batch_delete`
  makes it check each key, as AWS does;
- moto 5.2.6 authorises ``ListObjectsV2`` as the IAM action
  ``s3:ListObjectsV2`` instead of ``s3:ListBucket``, so every policy that
  grants listing is refused; the test dependencies exclude that release.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import xmltodict
from botocore.exceptions import ClientError
from cfnlint.decode.decode import decode_str
from moto.core import set_initial_no_auth_action_count

from infra.bootstrap import TEMPLATE
from pytest_insight.cli.main import main as insight
from pytest_insight.core.storage import open_storage
from tests.conftest import build_session

T = TypeVar("T")
REGION = "us-east-1"
POLICIES = Path(__file__).parent.parent / "infra" / "policies"
ROLES = {"publisher": "PublisherPolicy", "reader": "ReaderPolicy", "cleaner": "CleanerPolicy"}
SUT = "checkout-api"


def _json_policy(role: str) -> str:
    return (POLICIES / f"{role}.json").read_text(encoding="utf-8")


def _render(role: str, bucket: str, prefix: str = "team", sut: str = SUT) -> dict[str, Any]:
    """The JSON policy with its placeholders filled, as ``envsubst`` or ``string.Template`` would."""
    text = string.Template(_json_policy(role)).substitute(BucketName=bucket, Prefix=prefix, SutName=sut)
    return dict(json.loads(text))


def _unwrap_sub(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return node["Fn::Sub"]
        return {key: _unwrap_sub(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unwrap_sub(item) for item in node]
    return node


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems
    assert decoded is not None
    return dict(decoded)


@pytest.mark.parametrize("role", ROLES)
def test_template_and_json_hold_the_same_document(template: dict[str, Any], role: str) -> None:
    in_template = template["Resources"][ROLES[role]]["Properties"]["PolicyDocument"]
    assert _unwrap_sub(in_template) == json.loads(_json_policy(role))


@pytest.mark.parametrize("role", ROLES)
def test_json_placeholders_are_the_template_parameters(template: dict[str, Any], role: str) -> None:
    names = {
        m.group("braced") for m in string.Template.pattern.finditer(_json_policy(role)) if m.group("braced")
    }
    assert names == ({"BucketName", "Prefix", "SutName"} if role == "publisher" else {"BucketName", "Prefix"})
    assert names <= set(template["Parameters"])
    assert "${" not in json.dumps(_render(role, "bkt"))


def _actions(document: dict[str, Any]) -> dict[str, list[str]]:
    """Each allowed action and the resources it is allowed on."""
    found: dict[str, list[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            found.setdefault(action, []).append(statement["Resource"])
    return found


def _conditions(document: dict[str, Any], action: str) -> list[Any]:
    return [s.get("Condition") for s in document["Statement"] if s["Action"] == action]


def test_publisher_may_only_create_in_its_own_partition() -> None:
    document = _render("publisher", "bkt")
    partition = "arn:aws:s3:::bkt/team/v1/sut=checkout-api/*"
    assert _actions(document) == {
        "s3:ListBucket": ["arn:aws:s3:::bkt"],
        "s3:GetObject": [partition],  # the plugin reads its day's partition to refuse a duplicate id
        "s3:PutObject": [partition],
    }
    assert _conditions(document, "s3:ListBucket") == [
        {"StringLike": {"s3:prefix": "team/v1/sut=checkout-api/*"}}
    ]
    # only puts that create: an existing key (another run's bundle) cannot be overwritten
    assert _conditions(document, "s3:PutObject") == [{"Null": {"s3:if-none-match": "false"}}]


def test_reader_may_only_list_and_read_the_team_prefix() -> None:
    document = _render("reader", "bkt")
    assert _actions(document) == {
        "s3:ListBucket": ["arn:aws:s3:::bkt"],
        "s3:GetObject": ["arn:aws:s3:::bkt/team/*"],
    }
    assert _conditions(document, "s3:ListBucket") == [{"StringLike": {"s3:prefix": "team/*"}}]


def test_cleaner_may_list_read_and_delete_but_not_put() -> None:
    document = _render("cleaner", "bkt")
    inside = ["arn:aws:s3:::bkt/team/*"]
    assert _actions(document) == {
        "s3:ListBucket": ["arn:aws:s3:::bkt"],
        "s3:GetObject": inside,  # clear reads bundles to select sessions by start time
        "s3:DeleteObject": inside,
    }
    assert _conditions(document, "s3:ListBucket") == [{"StringLike": {"s3:prefix": "team/*"}}]


# -- moto with IAM access control --------------------------------------------


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def s3(self, endpoint_url: str | None = None) -> Any:
        return boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


def _user_with_policy(iam: Any, role: str, policy_arn: str) -> Keys:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def with_iam_auth(function: Callable[[], T]) -> T:
    """Run ``function`` with moto checking every request's keys and policies (none unauthenticated)."""
    return set_initial_no_auth_action_count(0)(function)()


def _denied(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    code = str(caught.value.response["Error"]["Code"])
    assert code == "AccessDenied", caught.value
    return code


def _delete_refused(client: Any, bucket: str, key: str) -> None:
    response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]})
    assert [e["Code"] for e in response.get("Errors", [])] == ["AccessDenied"]


@pytest.fixture
def per_key_batch_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto authorise each key of a ``DeleteObjects`` request, as AWS does (see module docstring)."""
    from moto.s3.responses import S3Response

    original = S3Response._authenticate_and_authorize_s3_action

    def per_key(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
        if key_name is None and self.data.get("Action") == "DeleteObject" and self.is_delete_keys():
            objects = xmltodict.parse(self.body)["Delete"].get("Object", [])
            for item in objects if isinstance(objects, list) else [objects]:
                original(self, bucket_name=bucket_name, key_name=item["Key"])
            return
        original(self, bucket_name=bucket_name, key_name=key_name)

    monkeypatch.setattr(S3Response, "_authenticate_and_authorize_s3_action", per_key)


# -- moto's IAM, as we rely on it ---------------------------------------------


def _lister(iam: Any, bucket: str, condition: dict[str, Any] | None) -> Keys:
    """A user whose one statement allows ``s3:ListBucket`` on ``bucket``, under ``condition``."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if condition is not None:
        statement["Condition"] = condition
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    arn = iam.create_policy(PolicyName=f"list-{uuid.uuid4().hex[:8]}", PolicyDocument=document)["Policy"][
        "Arn"
    ]
    return _user_with_policy(iam, "lister", arn)


def _listing(keys: Keys, bucket: str, prefix: str) -> str:
    """``allowed``, or the error code of a ``ListObjectsV2`` of ``prefix`` with ``keys``."""
    try:
        keys.s3().list_objects_v2(Bucket=bucket, Prefix=prefix)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "allowed"


@pytest.mark.parametrize(
    "condition",
    [None, {"StringLike": {"s3:prefix": "team/*"}}],
    ids=["unconditioned", "prefix-conditioned"],
)
def test_moto_lets_a_list_bucket_grant_list_objects(aws_env: dict[str, str], condition: Any) -> None:
    """AWS authorises ListObjectsV2 as ``s3:ListBucket``; moto 5.2.6 asked for ``s3:ListObjectsV2``.

    Every policy of ours grants listing this way: if this fails, moto has
    regressed again and the infra tests below would fail for moto's reason.
    """
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="listing")
        keys = _lister(boto3.client("iam", region_name=REGION), "listing", condition)
        assert with_iam_auth(lambda: _listing(keys, "listing", "team/v1/")) == "allowed"


def test_moto_still_ignores_the_prefix_condition(aws_env: dict[str, str]) -> None:
    """A known gap, recorded so that we hear when it closes.

    AWS refuses a listing outside ``team/*`` under this policy; moto allows it.
    When this fails while the test above passes, moto enforces ``StringLike`` on ``s3:prefix``: then make
    :func:`test_deployed_policies_are_enforced` check that the publisher
    cannot list another SUT's partition, and drop the first point of the
    module docstring.
    """
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="listing")
        keys = _lister(
            boto3.client("iam", region_name=REGION), "listing", {"StringLike": {"s3:prefix": "team/*"}}
        )
        assert with_iam_auth(lambda: _listing(keys, "listing", "elsewhere/")) == "allowed"


# moto's CloudFormation does not know AWS::S3::BucketPolicy: it says so in a warning and goes on
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy:UserWarning")
# nor the Glue and Athena types (tests/test_sql_schema.py creates the Glue table through its own API)
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..Glue..:UserWarning")
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..Athena..:UserWarning")
def test_deployed_policies_are_enforced(aws_env: dict[str, str], per_key_batch_delete: None) -> None:
    from moto import mock_aws

    bucket = "insight-policies"
    own = f"team/v1/sut={SUT}/date=2025-01-01/"
    other = "team/v1/sut=billing/date=2025-01-01/"
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        parameters = {"BucketName": bucket, "SutName": SUT, "Prefix": "team"}
        cloudformation.create_stack(
            StackName="insight",
            TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )
        (stack,) = cloudformation.describe_stacks(StackName="insight")["Stacks"]
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
        iam = boto3.client("iam", region_name=REGION)
        keys: dict[str, Keys] = {}
        for role, resource in ROLES.items():
            arn = outputs[f"{resource}Arn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            deployed = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            assert deployed == _render(role, bucket), f"{role}: the deployed policy is not {role}.json"
            keys[role] = _user_with_policy(iam, role, arn)
        admin = boto3.client("s3", region_name=REGION)
        for key in (f"{own}a.jsonl.gz", f"{other}b.jsonl.gz", "elsewhere/v1/c.jsonl.gz"):
            admin.put_object(Bucket=bucket, Key=key, Body=b"x")

        def check() -> None:
            with pytest.raises(ClientError, match="InvalidAccessKeyId"):  # auth is really on
                admin.list_objects_v2(Bucket=bucket)
            publisher, reader, cleaner = (keys[role].s3() for role in ROLES)

            publisher.put_object(Bucket=bucket, Key=f"{own}new.jsonl.gz", Body=b"n", IfNoneMatch="*")
            assert publisher.get_object(Bucket=bucket, Key=f"{own}a.jsonl.gz")["Body"].read() == b"x"
            assert publisher.list_objects_v2(Bucket=bucket, Prefix=own)["KeyCount"] == 2
            _denied(lambda: publisher.put_object(Bucket=bucket, Key=f"{other}new.jsonl.gz", Body=b"n"))
            _denied(lambda: publisher.put_object(Bucket=bucket, Key="elsewhere/v1/new.jsonl.gz", Body=b"n"))
            _denied(lambda: publisher.delete_object(Bucket=bucket, Key=f"{own}a.jsonl.gz"))
            _delete_refused(publisher, bucket, f"{own}a.jsonl.gz")
            _denied(lambda: publisher.get_object(Bucket=bucket, Key="elsewhere/v1/c.jsonl.gz"))
            _denied(lambda: publisher.get_object(Bucket=bucket, Key=f"{other}b.jsonl.gz"))

            assert reader.list_objects_v2(Bucket=bucket, Prefix="team/")["KeyCount"] == 3
            assert reader.get_object(Bucket=bucket, Key=f"{other}b.jsonl.gz")["Body"].read() == b"x"
            _denied(lambda: reader.put_object(Bucket=bucket, Key=f"{own}r.jsonl.gz", Body=b"r"))
            _denied(lambda: reader.delete_object(Bucket=bucket, Key=f"{own}a.jsonl.gz"))
            _denied(lambda: reader.get_object(Bucket=bucket, Key="elsewhere/v1/c.jsonl.gz"))

            assert cleaner.list_objects_v2(Bucket=bucket, Prefix="team/")["KeyCount"] == 3
            assert cleaner.get_object(Bucket=bucket, Key=f"{own}a.jsonl.gz")["Body"].read() == b"x"
            cleaner.delete_object(Bucket=bucket, Key=f"{own}new.jsonl.gz")
            assert cleaner.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"{other}b.jsonl.gz"}]})[
                "Deleted"
            ]
            _denied(lambda: cleaner.put_object(Bucket=bucket, Key=f"{own}c.jsonl.gz", Body=b"c"))
            _denied(lambda: cleaner.delete_object(Bucket=bucket, Key="elsewhere/v1/c.jsonl.gz"))
            _delete_refused(cleaner, bucket, "elsewhere/v1/c.jsonl.gz")

        with_iam_auth(check)
        remaining = sorted(o["Key"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"])
        assert remaining == ["elsewhere/v1/c.jsonl.gz", f"{own}a.jsonl.gz"]


# -- the product, over HTTP, with each role's keys ---------------------------


@pytest.fixture
def roles(moto_server_s3: Any, per_key_batch_delete: None) -> tuple[Any, dict[str, Keys]]:
    """IAM users on the moto server, one per role, holding the JSON policies for the test bucket."""
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server_s3.endpoint_url)
    keys = {}
    for role in ROLES:
        document = json.dumps(_render(role, moto_server_s3.bucket))
        arn = iam.create_policy(PolicyName=f"{role}-{uuid.uuid4().hex[:8]}", PolicyDocument=document)[
            "Policy"
        ]["Arn"]
        keys[role] = _user_with_policy(iam, role, arn)
    return moto_server_s3, keys


def _use(monkeypatch: pytest.MonkeyPatch, keys: Keys) -> None:
    for name, value in keys.env().items():
        monkeypatch.setenv(name, value)


def _publish_with_the_plugin(tmp_path: Path, storage: str, keys: Keys) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    env = {**os.environ, **keys.env(), "PYTEST_ADDOPTS": ""}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--insight",
        "--insight-strict",
    ]
    command += ["--insight-sut", SUT, "--insight-storage", storage, "test_sample.py"]
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_product_works_within_each_role(
    roles: tuple[Any, dict[str, Keys]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target, keys = roles
    storage = f"s3://{target.bucket}/team"
    old = datetime.now(UTC) - timedelta(days=400)
    local = open_storage(str(tmp_path / "local"))
    local.save_sessions([build_session("old-other", sut_name="billing", start=old)])

    def check() -> None:
        published = _publish_with_the_plugin(tmp_path, storage, keys["publisher"])
        assert published.returncode == 0, published.stdout + published.stderr
        assert "pytest-insight: saved session" in published.stdout
        _use(monkeypatch, keys["publisher"])
        # a second run the same day: the plugin's save reads the day's partition (no duplicate ids)
        open_storage(storage).save_session(build_session("second-run", sut_name=SUT, start=datetime.now(UTC)))

        # another SUT's partition: refused, with one clear line
        assert insight(["export", storage, "--storage", str(tmp_path / "local")]) != 0
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0
        assert "access denied for s3:PutObject" in error
        assert f"s3://{target.bucket}/team/v1/sut=billing/date=" in error

        _use(monkeypatch, keys["reader"])
        assert insight(["import", storage, "--storage", str(tmp_path / "mine"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["added"] == 2
        assert insight(["export", storage, "--storage", str(tmp_path / "local")]) != 0
        assert "access denied for s3:PutObject" in capsys.readouterr().err

        _use(monkeypatch, keys["cleaner"])
        assert insight(["export", storage, "--storage", str(tmp_path / "local")]) != 0
        assert "access denied for s3:PutObject" in capsys.readouterr().err

    with_iam_auth(check)
    assert len(target.keys("team/v1/sut=checkout-api/")) == 2
    # the cleaner's run: an old bundle (written by an admin) goes, today's run stays
    open_storage(storage, endpoint_url=target.endpoint_url).save_sessions(
        [build_session("old-api", sut_name=SUT, start=old)]
    )

    def clean() -> None:
        _use(monkeypatch, keys["cleaner"])
        assert insight(["clear", "--storage", storage, "--older-than", "30d", "--yes", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["cleared"] == 1  # old-api's partition, deleted unread

    with_iam_auth(clean)
    assert len(target.keys("team/v1/sut=checkout-api/")) == 2


def test_the_cleaner_never_has_to_rewrite_a_bundle_of_the_cutoff_day(
    roles: tuple[Any, dict[str, Keys]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target, keys = roles
    storage = f"s3://{target.bucket}/team"
    noon = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) + timedelta(hours=12)
    monkeypatch.setattr("pytest_insight.cli.clear_command.now", lambda: noon)  # the cutoff: noon, 30 days ago
    day = (noon - timedelta(days=30)).date()
    early = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=1)
    late = datetime.combine(day, datetime.max.time(), UTC) - timedelta(minutes=1)
    sessions = [build_session(n, sut_name=SUT, start=t) for n, t in (("early", early), ("late", late))]
    open_storage(storage, endpoint_url=target.endpoint_url).save_sessions(
        sessions
    )  # one bundle, as `insight export` writes

    def clean() -> int:
        _use(monkeypatch, keys["cleaner"])
        return insight(["clear", "--storage", storage, "--older-than", "30d", "--yes"])

    # --older-than counts whole UTC days, so the bundle of the cutoff's day is
    # left whole (no PutObject needed) and an older day's bundles are deleted.
    status = with_iam_auth(clean)
    assert status == 0, capsys.readouterr().err
    stored = open_storage(storage, endpoint_url=target.endpoint_url).load_sessions()
    assert sorted(session.session_id for session in stored) == ["early", "late"]


def test_a_write_to_a_missing_bucket_is_named_so_when_the_server_says_access_denied(
    moto_server_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user who may list but not put is refused a put to a missing bucket as to a forbidden one."""
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server_s3.endpoint_url)
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    arn = iam.create_policy(PolicyName=f"list-{uuid.uuid4().hex[:8]}", PolicyDocument=json.dumps(document))
    keys = _user_with_policy(iam, "lister", arn["Policy"]["Arn"])
    open_storage(str(tmp_path / "local")).save_sessions([build_session("one", sut_name=SUT)])

    def check() -> None:
        _use(monkeypatch, keys)
        assert insight(["export", "s3://no-such-bucket-here/team", "--storage", str(tmp_path / "local")]) == 3
        assert "s3://no-such-bucket-here: no such bucket (s3:PutObject)" in capsys.readouterr().err
        # an existing bucket stays "access denied": the listing finds it
        assert (
            insight(["export", f"s3://{moto_server_s3.bucket}/team", "--storage", str(tmp_path / "local")])
            == 3
        )
        assert "access denied for s3:PutObject" in capsys.readouterr().err

    with_iam_auth(check)
