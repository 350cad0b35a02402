"""Secrets in captured output, failure texts and tags never reach a store unless the user opts out."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pytest_insight.core.storage import JSONStorage
from pytest_insight.errors import ConfigurationError
from pytest_insight.exchange.redaction import KINDS, Redactor
from pytest_insight.model.sessions import TestSession
from tests.conftest import BASE_TIME, build_session
from tests.s3servers import S3Target

# built, not written out, so that no scanner takes this file for a leak
AWS_KEY_ID = "AKIA" + "Q3EXAMPLE7" + "ZX4W9K"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # 40 characters, as AWS makes them
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2 + "kLmN"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" * 3
GITLAB = "glpat-" + "x9Y8z7W6v5U4t3S2r1Q0"
SLACK = "xoxb-" + "1234567890-0987654321-" + "AbCdEfGhIjKl"
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nq0x\n-----END RSA PRIVATE KEY-----"
BEARER = "abcdef0123456789.ghijkl"
DB_PASSWORD = "s3cr3t-Pa55"
ASSIGNED = "hunter2hunter2"

SAMPLES = {
    "aws-access-key-id": (f"key id {AWS_KEY_ID} in env", AWS_KEY_ID),
    "aws-secret-key": (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
    "github-token": (f"using {GITHUB} and {GITHUB_PAT}", GITHUB),
    "gitlab-token": (f"CI_JOB_TOKEN {GITLAB}", GITLAB),
    "slack-token": (f"slack: {SLACK}", SLACK),
    "jwt": (f"cookie session={JWT};", JWT),
    "private-key": (f"key:\n{PEM}\nend", "MIIEpAIBAAKCAQEA7"),
    "bearer-token": (f"Authorization: Bearer {BEARER}", BEARER),
    "url-password": (f"postgres://app:{DB_PASSWORD}@db.internal:5432/shop", DB_PASSWORD),
    "password": (f"login(user='me', password='{ASSIGNED}')", ASSIGNED),
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_kind_is_replaced_and_counted(kind: str) -> None:
    text, secret = SAMPLES[kind]
    redactor = Redactor()
    cleaned = redactor.text(text)
    assert secret not in cleaned
    assert f"[REDACTED:{kind}]" in cleaned
    assert redactor.counts[kind] >= 1


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(KINDS)


def test_only_the_secret_of_an_assignment_goes() -> None:
    redactor = Redactor()
    assert redactor.text(f"password={ASSIGNED} user=me") == "password=[REDACTED:password] user=me"
    assert (
        redactor.text(f"postgres://app:{DB_PASSWORD}@db:5432")
        == "postgres://app:[REDACTED:url-password]@db:5432"
    )
    assert redactor.summary() == "2 secrets redacted (1 password, 1 url-password)"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain output, nothing secret: 1 != 2",
        "the word password alone, and a token mentioned",
        "https://example.com/path?q=1",
        "sha 4f9c2d81aa0e5b7c9d3e1f2a4b6c8d0e1f2a3b4c",
    ],
)
def test_clean_text_is_left_as_it_is(text: str) -> None:
    redactor = Redactor()
    assert redactor.text(text) is text
    assert redactor.total == 0
    assert redactor.summary() == ""


def test_allow_list_extra_patterns_and_bad_patterns() -> None:
    redactor = Redactor(patterns=[r"ACME-[0-9]{6}"], allow=[AWS_KEY_ID])
    assert redactor.text(f"{AWS_KEY_ID} ACME-123456") == f"{AWS_KEY_ID} [REDACTED:custom]"
    with pytest.raises(ConfigurationError, match=r"redaction pattern '\(unclosed'"):
        Redactor(patterns=["(unclosed"])


def test_a_session_is_redacted_everywhere_it_holds_text() -> None:
    session = build_session("s", tags={"deploy_url": f"https://ci:{DB_PASSWORD}@ci.example.com"})
    first = session.test_results[0]
    first.capstdout, first.capstderr, first.caplog = AWS_KEY_ID, GITHUB, f"password={ASSIGNED}"
    first.longreprtext = f"AssertionError: {JWT}"
    redactor = Redactor()
    redactor.session(session)
    flat = repr(session.to_dict())
    for secret in (AWS_KEY_ID, GITHUB, ASSIGNED, JWT, DB_PASSWORD):
        assert secret not in flat
    assert redactor.total == 5


LEAKY = f'''
import logging, os

def test_prints_secrets():
    print("{AWS_KEY_ID}", "{GITHUB}")
    logging.getLogger("app").warning("connecting to postgres://app:{DB_PASSWORD}@db/shop")

def test_fails_with_a_secret():
    token = "{GITLAB}"
    assert token == "", f"Bearer {BEARER}"
'''


def test_the_plugin_stores_no_secret_and_says_how_many_it_redacted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    store = pytester.path / "store"
    result = pytester.runpytest(
        "--insight", "--insight-storage", str(store), "--insight-tag", f"auth={SLACK}", "-o", "log_level=INFO"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*pytest-insight: saved session * secrets redacted (*aws-access-key-id*"])
    stored = b"".join(path.read_bytes() for path in store.rglob("*") if path.is_file())
    for secret in (AWS_KEY_ID, GITHUB, DB_PASSWORD, GITLAB, BEARER, SLACK):
        assert secret.encode() not in stored, secret
    (session,) = JSONStorage(store).load_sessions()
    assert session.session_tags["auth"] == "[REDACTED:slack-token]"
    assert "[REDACTED:aws-access-key-id]" in session.test_results[0].capstdout


def test_redaction_can_be_turned_off_and_tuned(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    kept = tmp_path / "kept"
    pytester.runpytest("--insight", "--insight-storage", str(kept), "--insight-no-redact")
    (session,) = JSONStorage(kept).load_sessions()
    assert AWS_KEY_ID in session.test_results[0].capstdout

    pytester.makeini(
        f"[pytest]\ninsight_redact_allow =\n    {AWS_KEY_ID}\ninsight_redact_patterns =\n    ghp_\\w+\n"
    )
    tuned = tmp_path / "tuned"
    pytester.runpytest("--insight", "--insight-storage", str(tuned))
    (session,) = JSONStorage(tuned).load_sessions()
    assert AWS_KEY_ID in session.test_results[0].capstdout
    assert GITHUB not in session.test_results[0].capstdout

    bad = pytester.runpytest(
        "--insight", "--insight-storage", str(tmp_path / "bad"), "--insight-redact-pattern", "("
    )
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*insight: redaction pattern '(':*"])


def leaky_session(session_id: str) -> TestSession:
    """A session as another tool (or an opted-out run) stored it: secrets and all."""
    session = build_session(session_id, tags={"deploy": f"https://ci:{DB_PASSWORD}@ci.example.com"})
    session.test_results[0].capstdout = f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
    session.test_results[
        1
    ].longreprtext = (
        f"E   assert token == {GITHUB!r}\n-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----"
    )
    return session


def everything_under(path: Path) -> bytes:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    data = b""
    for file in files:
        raw = file.read_bytes()
        data += gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return data


@pytest.mark.parametrize("target", ["bundle.jsonl.gz", "export.json", "bundles", "report.xml"])
def test_an_export_leaves_no_secret_in_any_format(tmp_path: Path, target: str) -> None:
    store = JSONStorage(tmp_path / "store")
    store.save_sessions([leaky_session("leaky"), build_session("clean", start=BASE_TIME + timedelta(days=1))])
    redactor = Redactor()
    assert store.export_sessions(tmp_path / target, redact=redactor) == 2
    written = everything_under(tmp_path / target)
    for secret in (AWS_KEY_ID, GITHUB, DB_PASSWORD, "MIIEv"):
        assert secret.encode() not in written
    assert b"[REDACTED:aws-access-key-id]" in written
    assert redactor.counts == {"aws-access-key-id": 1, "github-token": 1, "url-password": 1, "private-key": 1}
    assert store.get_session_by_id("leaky") == leaky_session("leaky")  # the store itself is not changed
    kept = tmp_path / f"kept-{target}"
    store.export_sessions(kept, redact=False)
    assert AWS_KEY_ID.encode() in everything_under(kept)


def test_a_clean_session_is_exported_as_stored(tmp_path: Path) -> None:
    store = JSONStorage(tmp_path / "store")
    store.save_session(build_session("clean"))
    store.export_sessions(tmp_path / "redacted.jsonl.gz")
    store.export_sessions(tmp_path / "as-is.jsonl.gz", redact=False)
    assert everything_under(tmp_path / "redacted.jsonl.gz") == everything_under(tmp_path / "as-is.jsonl.gz")


def test_the_cli_export_redacts_and_counts_and_can_be_told_not_to(tmp_path: Path, insight_home: Path) -> None:
    JSONStorage(tmp_path / "store").save_session(leaky_session("leaky"))
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
    command = [sys.executable, "-m", "pytest_insight", "export", "--storage", str(tmp_path / "store")]
    done = subprocess.run(
        [*command, str(tmp_path / "out.json")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(
        "; 4 secrets redacted (1 aws-access-key-id, 1 github-token, 1 private-key, 1 url-password)"
    )
    assert AWS_KEY_ID not in (tmp_path / "out.json").read_text()
    raw = [*command, str(tmp_path / "raw.json"), "--no-redact", "--json"]
    kept = subprocess.run(raw, env=env, capture_output=True, text=True, check=False)
    assert json.loads(kept.stdout)["redacted"] is None
    assert AWS_KEY_ID in (tmp_path / "raw.json").read_text()


def test_publishing_to_a_bucket_redacts(tmp_path: Path, moto_server_s3: S3Target) -> None:
    store = JSONStorage(tmp_path / "store")
    store.save_session(leaky_session("leaky"))
    store.export_sessions(f"s3://{moto_server_s3.bucket}/team")
    (key,) = moto_server_s3.keys("team/")
    body = gzip.decompress(
        moto_server_s3.client.get_object(Bucket=moto_server_s3.bucket, Key=key)["Body"].read()
    )
    assert AWS_KEY_ID.encode() not in body
    assert b"[REDACTED:github-token]" in body


def test_every_kind_printed_by_a_real_run_reaches_no_bucket_object_and_no_junit_report(
    pytester: pytest.Pytester, moto_server_s3: S3Target, tmp_path: Path, insight_home: Path
) -> None:
    lines = "\n".join(f"    print({text!r})" for text, _ in SAMPLES.values())
    pytester.makepyfile(test_every_kind=f"def test_prints_every_kind():\n{lines}\n")
    bucket = f"s3://{moto_server_s3.bucket}/team"
    pytester.runpytest("--insight", "--insight-storage", bucket).assert_outcomes(passed=1)
    objects = b"".join(
        gzip.decompress(
            moto_server_s3.client.get_object(Bucket=moto_server_s3.bucket, Key=key)["Body"].read()
        )
        for key in moto_server_s3.keys("team/")
    )
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTEST_INSIGHT_HOME": str(insight_home)}
    command = [sys.executable, "-m", "pytest_insight", "export", str(report), "--storage", bucket]
    assert subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0
    for kind, (_, secret) in SAMPLES.items():
        assert secret.encode() not in objects, kind
        assert secret.encode() not in report.read_bytes(), kind
        assert f"[REDACTED:{kind}]".encode() in objects
