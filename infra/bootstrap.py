"""Apply the bucket settings of ``infra/cloudformation/bucket.yaml`` through the S3 API.

The settings are read from the template, never restated here, so the two
cannot drift: versioning, default encryption, the public access block, the
lifecycle rules and the bucket policy of the ``AWS::S3::Bucket`` and
``AWS::S3::BucketPolicy`` resources are resolved with the template's
parameters (defaults, overridden with ``-p Name=Value``) and sent with the
matching S3 calls. A bucket property or lifecycle field this module does not
know is an error, not a silent skip.

Use it where CloudFormation does not reach: an S3-compatible server
(SeaweedFS, MinIO, moto), or a bucket made by hand. Servers that cannot take
every setting get flags: ``--no-tls-only`` leaves out the statements that deny
plain-http requests (a loopback server without TLS would refuse everything),
``--no-public-access-block`` leaves out the public access block.

    python -m infra.bootstrap --bucket my-bucket -p Prefix=team -p RetentionDays=30 \\
        --endpoint-url http://127.0.0.1:8333 --no-tls-only --no-public-access-block --create
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import cfn
from infra.cfn import TEMPLATE, BootstrapError, Context, load_template, resolve

__all__ = [
    "TEMPLATE",
    "BootstrapError",
    "BucketSettings",
    "apply_settings",
    "bucket_settings",
    "load_template",
    "main",
    "resolve",
]

_TLS_KEY = "aws:SecureTransport"
_HANDLED_BUCKET_PROPERTIES = frozenset(
    {
        "BucketName",
        "VersioningConfiguration",
        "BucketEncryption",
        "PublicAccessBlockConfiguration",
        "LifecycleConfiguration",
    }
)
_LIFECYCLE_FIELDS = frozenset(
    {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "NoncurrentVersionExpiration",
        "AbortIncompleteMultipartUpload",
    }
)


@dataclass(frozen=True)
class BucketSettings:
    """The bucket's settings in the shapes the S3 API takes (None: not applied)."""

    bucket: str
    versioning: dict[str, Any]
    encryption: dict[str, Any]
    lifecycle: dict[str, Any]
    public_access_block: dict[str, Any] | None
    policy: dict[str, Any] | None


def _resource(template: Mapping[str, Any], kind: str) -> dict[str, Any]:
    found = [r for r in template["Resources"].values() if r.get("Type") == kind]
    if len(found) != 1:
        raise BootstrapError(f"the template must have exactly one {kind} resource, found {len(found)}")
    return dict(found[0].get("Properties", {}))


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(rule) - _LIFECYCLE_FIELDS)
    if unknown:
        raise BootstrapError(f"lifecycle rule {rule.get('Id')!r}: field {unknown[0]} is not supported")
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


def _without_tls_only(policy: dict[str, Any]) -> dict[str, Any] | None:
    kept = [s for s in policy["Statement"] if _TLS_KEY not in json.dumps(s.get("Condition", {}))]
    return {**policy, "Statement": kept} if kept else None


def bucket_settings(
    parameters: Mapping[str, str],
    *,
    template: Mapping[str, Any] | None = None,
    region: str = "us-east-1",
    tls_only: bool = True,
    public_access_block: bool = True,
) -> BucketSettings:
    """Resolve the bucket's settings from the template with these parameter values.

    Args:
        parameters: template parameters by name (``BucketName`` is needed); defaults fill the rest.
        template: the loaded template; :data:`TEMPLATE` when None.
        region: what ``AWS::Region`` stands for.
        tls_only: keep the bucket policy statements that deny requests without TLS.
        public_access_block: include the public access block.

    Raises:
        BootstrapError: a parameter is unknown, missing or invalid, or the template has
            a bucket setting this module cannot apply.
    """
    loaded = template if template is not None else load_template()
    context = Context(cfn.parameters(loaded, parameters), loaded.get("Conditions", {}), region)
    bucket = resolve(_resource(loaded, "AWS::S3::Bucket"), context)
    unknown = sorted(set(bucket) - _HANDLED_BUCKET_PROPERTIES)
    if unknown:
        raise BootstrapError(f"bucket property {unknown[0]} is not applied by infra/bootstrap.py")
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = [
        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
        for rule in encryption
    ]
    policy = resolve(_resource(loaded, "AWS::S3::BucketPolicy")["PolicyDocument"], context)
    return BucketSettings(
        bucket=bucket["BucketName"],
        versioning=dict(bucket["VersioningConfiguration"]),
        encryption={"Rules": rules},
        lifecycle={"Rules": [_lifecycle_rule(r) for r in bucket["LifecycleConfiguration"]["Rules"]]},
        public_access_block=dict(bucket["PublicAccessBlockConfiguration"]) if public_access_block else None,
        policy=policy if tls_only else _without_tls_only(policy),
    )


def apply_settings(client: Any, settings: BucketSettings) -> list[str]:
    """Send the settings to the bucket with a boto3 S3 client; returns the calls made, in order.

    Raises:
        botocore.exceptions.ClientError: the server refused a setting (the call is in the message).
    """
    bucket = settings.bucket
    calls: list[tuple[str, dict[str, Any]]] = [
        ("put_bucket_versioning", {"VersioningConfiguration": settings.versioning}),
        ("put_bucket_encryption", {"ServerSideEncryptionConfiguration": settings.encryption}),
        ("put_bucket_lifecycle_configuration", {"LifecycleConfiguration": settings.lifecycle}),
    ]
    if settings.public_access_block is not None:
        calls.append(
            ("put_public_access_block", {"PublicAccessBlockConfiguration": settings.public_access_block})
        )
    if settings.policy is not None:
        calls.append(("put_bucket_policy", {"Policy": json.dumps(settings.policy)}))
    for name, arguments in calls:
        getattr(client, name)(Bucket=bucket, **arguments)
    return [name for name, _ in calls]


def _create_if_missing(client: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = client.meta.region_name
    where = {"CreateBucketConfiguration": {"LocationConstraint": region}} if region != "us-east-1" else {}
    client.create_bucket(Bucket=bucket, **where)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bootstrap",
        description="Apply the bucket settings of infra/cloudformation/bucket.yaml through the S3 API.",
    )
    parser.add_argument("--bucket", required=True, help="the bucket (the template's BucketName)")
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", help="a template parameter"
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="the template (default: %(default)s)")
    parser.add_argument("--endpoint-url", help="an S3-compatible server (default: AWS)")
    parser.add_argument("--region", default=None, help="the region (default: boto3's configuration)")
    parser.add_argument("--create", action="store_true", help="create the bucket first if it does not exist")
    parser.add_argument(
        "--no-tls-only", action="store_true", help="leave out the deny-without-TLS statements"
    )
    parser.add_argument(
        "--no-public-access-block", action="store_true", help="leave out the public access block"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the settings as JSON; send nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a bad template or parameter)."""
    args = _parse_args(argv)
    try:
        given = dict(item.split("=", 1) for item in args.parameter)
    except ValueError:
        print("bootstrap: error: a parameter is NAME=VALUE", file=sys.stderr)
        return 2
    given["BucketName"] = args.bucket
    import boto3

    client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    try:
        settings = bucket_settings(
            given,
            template=load_template(args.template),
            region=client.meta.region_name,
            tls_only=not args.no_tls_only,
            public_access_block=not args.no_public_access_block,
        )
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(settings.__dict__, indent=2))
        return 0
    if args.create:
        _create_if_missing(client, settings.bucket)
    for call in apply_settings(client, settings):
        print(f"{call}: s3://{settings.bucket}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
