"""Run every benchmark: ``python -m tests.bench`` (what ``nox -s bench`` runs).

Each benchmark runs in a process of its own, so that one's memory does not
show in the next one's peak RSS figures. Extra arguments go to the S3
benchmark (``--bundles``, ``--concurrency``).
"""

from __future__ import annotations

import subprocess
import sys

__all__: list[str] = []

BENCHMARKS = [
    ("store: save and load scaling", "tests.bench.store", []),
    ("exchange: local files", "tests.bench.exchange", []),
    ("decode: sessions of 1,000 results", "tests.bench.decode", []),
    ("plugin: a pytest run with and without recording", "tests.bench.plugin", []),
    (
        "plugin suites: more-itertools, boltons and dateutil with and without recording",
        "tests.bench.plugin_suites",
        [],
    ),
    ("plugin parts: imports, recording a test, the end of a run", "tests.bench.plugin_parts", []),
    ("plugin publish: a pytest run whose bucket refuses or never answers", "tests.bench.plugin_publish", []),
    ("listing: insight sessions --limit 5 on 200 and 20,000 sessions", "tests.bench.listing", []),
    ("redaction: captured output, clean and with secrets", "tests.bench.redaction", []),
    ("insight: flaky, regressions and report over 100,000 sessions; accuracy", "tests.bench.insight", []),
    ("sql: insight sql over 100,000 sessions, local store and SeaweedFS", "tests.bench.sql", []),
    ("s3: SeaweedFS, against aws s3 cp, s5cmd and boto3", "tests.bench.s3", sys.argv[1:]),
    ("s3 ops: CPU per object for list, get and put, against s5cmd", "tests.bench.s3_ops", []),
]

if __name__ == "__main__":
    failed = 0
    for title, module, arguments in BENCHMARKS:
        print(f"\n== {title} ==", flush=True)
        failed |= subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode
    sys.exit(1 if failed else 0)
