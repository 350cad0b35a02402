"""``python -m pytest_insight``: the ``insight`` command."""

from __future__ import annotations

from pytest_insight.cli.main import console_main

__all__: list[str] = []

if __name__ == "__main__":
    console_main()
