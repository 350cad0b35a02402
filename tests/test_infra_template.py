"""The bucket template: cfn-lint, every security property, a moto stack, and the S3-API bootstrap."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cfnlint.api import lint
from cfnlint.decode.decode import decode_str

from infra import bootstrap
from infra.bootstrap import TEMPLATE, BootstrapError, apply_settings, bucket_settings, load_template

REGION = "us-east-1"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template as cfn-lint reads it (short forms such as ``!Sub`` become ``Fn::Sub``)."""
    decoded, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems, problems
    assert decoded is not None
    return dict(decoded)


def _bucket(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"]["SessionBucket"]["Properties"])


def _statements(template: dict[str, Any], resource: str) -> list[dict[str, Any]]:
    return list(template["Resources"][resource]["Properties"]["PolicyDocument"]["Statement"])


def test_cfn_lint_finds_nothing() -> None:
    matches = lint(TEMPLATE.read_text(encoding="utf-8"), regions=[REGION, "eu-west-1"])
    assert [str(match) for match in matches] == []


def test_cfn_lint_would_catch_a_broken_template() -> None:
    broken = TEMPLATE.read_text(encoding="utf-8").replace(
        "Status: Enabled\n      BucketEncryption", "Status: On\n      BucketEncryption"
    )
    assert lint(broken, regions=[REGION])


def test_bootstrap_reads_the_template_as_cfn_lint_does(template: dict[str, Any]) -> None:
    assert load_template() == template


def test_default_encryption_is_sse_s3_with_a_kms_option(template: dict[str, Any]) -> None:
    assert template["Conditions"]["UseKms"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    (rule,) = _bucket(template)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = rule["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == {"Fn::If": ["UseKms", "aws:kms", "AES256"]}
    assert default["KMSMasterKeyID"] == {"Fn::If": ["UseKms", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}


def test_versioning_is_enabled(template: dict[str, Any]) -> None:
    assert _bucket(template)["VersioningConfiguration"] == {"Status": "Enabled"}


def test_all_public_access_is_blocked(template: dict[str, Any]) -> None:
    assert _bucket(template)["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK


def test_requests_without_tls_are_denied_on_bucket_and_objects(template: dict[str, Any]) -> None:
    policy = template["Resources"]["SessionBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "SessionBucket"}
    tls = [s for s in _statements(template, "SessionBucketPolicy") if "Bool" in s.get("Condition", {})]
    assert len(tls) == 1
    (statement,) = tls
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::Sub": "arn:aws:s3:::${BucketName}"},
        {"Fn::Sub": "arn:aws:s3:::${BucketName}/*"},
    ]


def test_lifecycle_expires_sessions_after_the_retention_parameter(template: dict[str, Any]) -> None:
    rules = {rule["Id"]: rule for rule in _bucket(template)["LifecycleConfiguration"]["Rules"]}
    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    sessions = rules["expire-sessions"]
    assert sessions["Prefix"] == {"Fn::Sub": "${Prefix}/v1/"}
    assert sessions["ExpirationInDays"] == {"Ref": "RetentionDays"}
    assert template["Parameters"]["RetentionDays"]["Type"] == "Number"
    hygiene = rules["bucket-hygiene"]
    assert "Prefix" not in hygiene  # the whole bucket
    assert hygiene["NoncurrentVersionExpiration"] == {"NoncurrentDays": {"Ref": "NoncurrentVersionDays"}}
    assert hygiene["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": {"Ref": "AbortIncompleteUploadDays"}
    }


def test_the_data_bucket_survives_stack_deletion(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["SessionBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


def _parameters(bucket: str, **extra: str) -> list[dict[str, str]]:
    values = {"BucketName": bucket, "SutName": "checkout-api", **extra}
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


# moto's CloudFormation does not know AWS::S3::BucketPolicy: it says so in a warning and goes on
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy:UserWarning")
# nor the Glue and Athena types: tests/test_sql_infra.py creates them through their own APIs
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..Glue..:UserWarning")
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..Athena..:UserWarning")
@pytest.mark.parametrize("kms_key", ["", KMS_KEY], ids=["sse-s3", "sse-kms"])
def test_the_template_creates_a_stack_in_moto(aws_env: dict[str, str], kms_key: str) -> None:
    from moto import mock_aws

    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(
            StackName="insight",
            TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
            Parameters=_parameters("insight-stack", KmsKeyArn=kms_key),
        )
        (stack,) = cloudformation.describe_stacks(StackName="insight")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
        assert outputs["StorageUri"] == "s3://insight-stack/team"
        assert ("KmsKeyUsePolicyArn" in outputs) is bool(kms_key)
        encryption = boto3.client("s3", region_name=REGION).get_bucket_encryption(Bucket="insight-stack")
        (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
        expected = (
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key} if kms_key else {"SSEAlgorithm": "AES256"}
        )
        assert rule["ApplyServerSideEncryptionByDefault"] == expected


def _read_back(client: Any, bucket: str) -> dict[str, Any]:
    """Every setting the bootstrap sends, as the server reports it (None where it has none)."""
    found: dict[str, Any] = {}
    calls: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "versioning": ("get_bucket_versioning", lambda r: {"Status": r.get("Status")}),
        "encryption": ("get_bucket_encryption", lambda r: r["ServerSideEncryptionConfiguration"]),
        "lifecycle": ("get_bucket_lifecycle_configuration", lambda r: r["Rules"]),
        "policy": ("get_bucket_policy", lambda r: json.loads(r["Policy"])),
        "public_access_block": ("get_public_access_block", lambda r: r["PublicAccessBlockConfiguration"]),
    }
    for name, (call, pick) in calls.items():
        try:
            found[name] = pick(getattr(client, call)(Bucket=bucket))
        except ClientError:
            found[name] = None
    return found


def _lifecycle_by_id(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule["ID"]: rule for rule in rules}


def test_bootstrap_applies_all_five_settings_on_moto(mock_s3: Any) -> None:
    settings = bucket_settings({"BucketName": mock_s3.bucket, "RetentionDays": "17", "Prefix": "qa/team"})
    calls = apply_settings(mock_s3.client, settings)
    assert calls[-1] == "put_bucket_policy"  # the TLS-only deny goes last
    found = _read_back(mock_s3.client, mock_s3.bucket)
    assert found["versioning"] == {"Status": "Enabled"}
    (rule,) = found["encryption"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert found["public_access_block"] == PUBLIC_ACCESS_BLOCK
    statements = {s["Sid"]: s for s in found["policy"]["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyInsecureTransport"]["Resource"] == [
        f"arn:aws:s3:::{mock_s3.bucket}",
        f"arn:aws:s3:::{mock_s3.bucket}/*",
    ]
    rules = _lifecycle_by_id(found["lifecycle"])
    assert rules["expire-sessions"]["Expiration"] == {"Days": 17}
    assert rules["expire-sessions"]["Filter"] == {"Prefix": "qa/team/v1/"}
    assert rules["bucket-hygiene"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rules["bucket-hygiene"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_bootstrap_uses_the_kms_key_when_given(mock_s3: Any) -> None:
    apply_settings(mock_s3.client, bucket_settings({"BucketName": mock_s3.bucket, "KmsKeyArn": KMS_KEY}))
    (rule,) = _read_back(mock_s3.client, mock_s3.bucket)["encryption"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": KMS_KEY,
    }
    assert rule["BucketKeyEnabled"] is True


def test_bootstrap_takes_what_seaweedfs_supports(seaweedfs_s3: Any) -> None:
    client, bucket = seaweedfs_s3.client, seaweedfs_s3.bucket
    settings = bucket_settings(
        {"BucketName": bucket, "RetentionDays": "21"}, tls_only=False, public_access_block=False
    )
    apply_settings(client, settings)
    found = _read_back(client, bucket)
    assert found["versioning"] == {"Status": "Enabled"}
    assert found["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    rules = _lifecycle_by_id(found["lifecycle"])
    assert rules["expire-sessions"]["Expiration"] == {"Days": 21}
    assert rules["bucket-hygiene"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert [s["Sid"] for s in found["policy"]["Statement"]] == ["DenyVersionDeletion"]
    # what is left does not get in the product's way (SeaweedFS stores the version-deletion deny
    # but, measured, does not enforce it: AWS does)
    client.put_object(Bucket=bucket, Key="team/v1/x", Body=b"1")
    client.put_object(Bucket=bucket, Key="team/v1/x", Body=b"2")
    assert client.get_object(Bucket=bucket, Key="team/v1/x")["Body"].read() == b"2"
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "team/v1/x"}]})


def test_seaweedfs_refuses_what_the_flags_leave_out(seaweedfs_s3: Any) -> None:
    """The flags exist because SeaweedFS refuses the public access block and enforces the TLS deny."""
    client, bucket = seaweedfs_s3.client, seaweedfs_s3.bucket
    with pytest.raises(ClientError, match="NotImplemented"):
        client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    apply_settings(client, bucket_settings({"BucketName": bucket}, public_access_block=False))
    with pytest.raises(ClientError, match="AccessDenied"):  # plain http: denied, as AWS would
        client.put_object(Bucket=bucket, Key="team/v1/x", Body=b"1")


def test_leaving_out_tls_removes_only_that_statement() -> None:
    full = bucket_settings({"BucketName": "bkt"})
    relaxed = bucket_settings({"BucketName": "bkt"}, tls_only=False)
    assert full.policy is not None
    assert relaxed.policy is not None
    kept = [s for s in full.policy["Statement"] if s["Sid"] != "DenyInsecureTransport"]
    assert relaxed.policy["Statement"] == kept
    assert (relaxed.versioning, relaxed.encryption, relaxed.lifecycle) == (
        full.versioning,
        full.encryption,
        full.lifecycle,
    )


def test_bootstrap_refuses_a_bucket_setting_it_cannot_apply() -> None:
    template = load_template()
    properties = template["Resources"]["SessionBucket"]["Properties"]
    properties["ObjectLockEnabled"] = True
    with pytest.raises(BootstrapError, match="ObjectLockEnabled"):
        bucket_settings({"BucketName": "bkt"}, template=template)
    del properties["ObjectLockEnabled"]
    properties["LifecycleConfiguration"]["Rules"][0]["Transitions"] = []
    with pytest.raises(BootstrapError, match="Transitions"):
        bucket_settings({"BucketName": "bkt"}, template=template)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "BucketName has no value"),
        ({"BucketName": "bkt", "RetentionDays": "0"}, "below 1"),
        ({"BucketName": "bkt", "RetentionDays": "ten"}, "not a whole number"),
        ({"BucketName": "bkt", "Prefix": "/team"}, "does not match"),
        ({"BucketName": "bkt", "Retention": "3"}, "unknown template parameter 'Retention'"),
    ],
)
def test_bootstrap_checks_parameters_as_cloudformation_would(
    parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(BootstrapError, match=message):
        bucket_settings(parameters)


def test_bootstrap_command_creates_and_configures_a_bucket(
    mock_s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = bootstrap.main(
        ["--bucket", "made-by-bootstrap", "--create", "--region", REGION, "-p", "RetentionDays=5"]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "put_bucket_policy: s3://made-by-bootstrap" in out
    found = _read_back(mock_s3.client, "made-by-bootstrap")
    assert _lifecycle_by_id(found["lifecycle"])["expire-sessions"]["Expiration"] == {"Days": 5}
    assert found["public_access_block"] == PUBLIC_ACCESS_BLOCK
    assert bootstrap.main(["--bucket", "bkt", "-p", "RetentionDays=0", "--region", REGION]) == 2
    assert "RetentionDays=0" in capsys.readouterr().err
