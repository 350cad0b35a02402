"""Where the S3 backend's settings come from: ~/.aws profiles, the environment, and AWS's partitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage, S3Storage
from pytest_insight.storage.s3 import S3Backend
from tests.conftest import MakeSession
from tests.s3servers import S3Target


def test_a_developer_with_only_an_aws_profile_exports_and_imports(
    seaweedfs_s3: S3Target,
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    make_session: MakeSession,
    tmp_path: Path,
) -> None:
    """Keys, region and endpoint in ~/.aws alone, against a server that checks signatures."""
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[dev]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(
        f"[profile dev]\nregion = us-east-1\nendpoint_url = {seaweedfs_s3.endpoint_url}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_PROFILE", "dev")
    sessions = [make_session(sut_name="api"), make_session(sut_name="web")]
    mine = JSONStorage(tmp_path / "mine")
    mine.save_sessions(sessions)
    assert mine.export_sessions(f"s3://{seaweedfs_s3.bucket}/team") == 2
    theirs = JSONStorage(tmp_path / "theirs")
    assert theirs.import_sessions(f"s3://{seaweedfs_s3.bucket}/team")["added"] == 2
    assert {s.session_id for s in theirs.load_sessions()} == {s.session_id for s in sessions}
    assert len(S3Storage(seaweedfs_s3.bucket, "team").load_sessions()) == 2


def test_the_china_partition_gets_its_own_endpoint(aws_env: dict[str, str]) -> None:
    settings = S3Backend("bucket", region="cn-north-1").bucket.settings
    assert settings is not None
    assert settings.endpoint == "https://bucket.s3.cn-north-1.amazonaws.com.cn"
    assert settings.config["virtual_hosted_style_request"] is True


def test_aws_itself_needs_no_endpoint(aws_env: dict[str, str]) -> None:
    settings = S3Backend("bucket", region="eu-west-2").bucket.settings
    assert settings is not None
    assert (settings.endpoint, settings.region) == (None, "eu-west-2")


def test_virtual_addressing_from_the_config_puts_the_bucket_in_the_host(
    aws_env: dict[str, str],
) -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[default]\ns3 =\n  addressing_style = virtual\n")
    settings = S3Backend("bucket", endpoint_url="http://127.0.0.1:9000").bucket.settings
    assert settings is not None
    assert settings.endpoint == "http://bucket.127.0.0.1:9000"
    assert settings.client["allow_http"] is True


def test_a_ca_bundle_that_cannot_be_read_is_a_configuration_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_insight.errors import ConfigurationError

    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="CA bundle"):
        S3Backend("bucket", endpoint_url="https://127.0.0.1:9000")
