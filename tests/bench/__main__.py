"""Run every benchmark: ``python -m tests.bench`` (what ``nox -s bench`` runs).

Extra arguments go to the S3 benchmark (``--bundles``, ``--concurrency``).
"""

from __future__ import annotations

import sys

from tests.bench import exchange, s3, store

__all__: list[str] = []

if __name__ == "__main__":
    print("== store: save and load scaling ==", flush=True)
    store.main([])
    print("\n== exchange: local files ==", flush=True)
    exchange.main([])
    print("\n== s3: SeaweedFS, against aws s3 cp, s5cmd and boto3 ==", flush=True)
    s3.main(sys.argv[1:])
