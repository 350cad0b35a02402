"""The wire format: bundles (gzipped JSON Lines), their decoding, compression and key layout.

Above the model, below the storages: both backends and the exchange read
and write bundles through it. See docs/internals/bundle-format.md.
"""

from __future__ import annotations
