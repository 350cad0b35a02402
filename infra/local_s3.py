"""Start a local SeaweedFS S3 server from a checkout: ``python infra/local_s3.py`` (``insight dev-s3``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python infra/local_s3.py` from anywhere

from pytest_insight.dev_s3 import main
from pytest_insight.devserver import *  # noqa: F403  the names the tests and the demo import

if __name__ == "__main__":
    raise SystemExit(main())
