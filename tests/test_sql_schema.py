"""One schema source: the Glue table, the DuckDB views and the docs agree with it; the S3 secret."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode.decode import decode_str

from infra.bootstrap import TEMPLATE
from pytest_insight.errors import ConfigurationError
from pytest_insight.sql import LocalTarget, connect
from pytest_insight.sql.credentials import resolve_s3_settings, secret_statement
from pytest_insight.sql.schema import (
    RESULT_FIELDS,
    RESULTS_COLUMNS,
    SESSIONS_COLUMNS,
    glue_columns,
    glue_partition_keys,
    markdown_table,
)

DOCS = Path(__file__).parents[1] / "docs" / "sql.md"
QUERIES = Path(__file__).parents[1] / "pytest_insight" / "sql" / "queries"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    decoded, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems, problems
    assert decoded is not None
    return dict(decoded["Resources"])


def test_the_glue_table_has_the_schemas_columns(resources: dict[str, Any]) -> None:
    table = resources["SessionLinesTable"]["Properties"]["TableInput"]
    assert table["StorageDescriptor"]["Columns"] == glue_columns()
    assert table["PartitionKeys"] == glue_partition_keys()
    parameters = table["Parameters"]
    assert parameters["projection.sut.type"] == "injected"
    assert parameters["projection.session_date.type"] == "date"
    template = parameters["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${BucketName}/${Prefix}/v1/sut=${!sut}/date=${!session_date}/"


def test_the_athena_queries_unnest_every_result_field(resources: dict[str, Any]) -> None:
    names = ", ".join(field.name for field in RESULT_FIELDS)
    named = {key: value for key, value in resources.items() if value["Type"] == "AWS::Athena::NamedQuery"}
    assert {value["Properties"]["Name"] for value in named.values()} == {
        p.stem for p in QUERIES.glob("*.sql")
    }
    for value in named.values():
        text = value["Properties"]["QueryString"]["Fn::Sub"]
        assert "s.sut = '${SutName}'" in text
        for unnest in re.findall(r"UNNEST\(s\.test_results\) AS t\(([^)]*)\)", text):
            assert unnest == names


def test_the_views_have_the_schemas_columns(tmp_path: Path) -> None:
    connection = connect(LocalTarget(tmp_path))
    for view, columns in (("sessions", SESSIONS_COLUMNS), ("results", RESULTS_COLUMNS)):
        described = connection.execute(f"DESCRIBE {view}").fetchall()
        spelled = [
            (c.name, connection.execute(f"SELECT NULL::{c.sql_type}").description[0][1]) for c in columns
        ]
        as_described = [
            (row[0], connection.execute(f"SELECT NULL::{row[1]}").description[0][1]) for row in described
        ]
        assert as_described == spelled


def test_the_docs_document_the_schemas_columns() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert markdown_table(SESSIONS_COLUMNS) in text
    assert markdown_table(RESULTS_COLUMNS) in text


@pytest.mark.usefixtures("aws_env")
def test_moto_accepts_the_glue_table(resources: dict[str, Any]) -> None:
    from moto import mock_aws

    def substitute(value: Any) -> Any:
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, replacement in {
                "BucketName": "b",
                "Prefix": "team",
                "GlueDatabaseName": "insight",
            }.items():
                text = text.replace("${" + name + "}", replacement)
            return text.replace("${!", "${")
        if isinstance(value, dict):
            return {key: substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [substitute(item) for item in value]
        return value

    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "insight"})
        glue.create_table(
            DatabaseName="insight",
            TableInput=substitute(resources["SessionLinesTable"]["Properties"]["TableInput"]),
        )
        stored = glue.get_table(DatabaseName="insight", Name="session_lines")["Table"]
        assert stored["StorageDescriptor"]["Location"] == "s3://b/team/v1/"


@pytest.mark.usefixtures("aws_env")
def test_an_unknown_aws_profile_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigurationError, match="no-such-profile"):
        resolve_s3_settings("http://127.0.0.1:1", None)


@pytest.mark.usefixtures("aws_env")
def test_the_secret_comes_from_the_boto3_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token'quote")
    settings = resolve_s3_settings("http://127.0.0.1:8333", "eu-west-1")
    assert (settings.endpoint, settings.use_ssl, settings.url_style, settings.region) == (
        "127.0.0.1:8333",
        False,
        "path",
        "eu-west-1",
    )
    assert (settings.key_id, settings.secret, settings.session_token) == ("testing", "testing", "token'quote")
    statement = secret_statement(settings, "s3://b")
    assert "SESSION_TOKEN 'token''quote'" in statement
    assert "ENDPOINT '127.0.0.1:8333'" in statement
    on_aws = resolve_s3_settings(None, "eu-west-1")
    assert (on_aws.endpoint, on_aws.use_ssl, on_aws.url_style, on_aws.region) == (
        "s3.eu-west-1.amazonaws.com",
        True,
        "vhost",
        "eu-west-1",
    )
