"""The user's retry settings, as botocore reads them, turned into obstore's ``RetryConfig``.

=====================================================  ==========================================
botocore (profile key, environment variable)           obstore ``RetryConfig``
=====================================================  ==========================================
``max_attempts``, ``AWS_MAX_ATTEMPTS``                 ``max_retries`` = attempts - 1 (unset: 10
                                                       attempts, :data:`DEFAULT_MAX_ATTEMPTS`)
``retry_mode``, ``AWS_RETRY_MODE``                     checked (``legacy``, ``standard``,
                                                       ``adaptive``); every mode backs off the same
(all modes) growth factor 2, longest wait 20 s         ``backoff``: ``base`` 2, ``max_backoff`` 20 s,
                                                       ``init_backoff`` 100 ms
(none)                                                 ``retry_timeout`` 3 minutes
=====================================================  ==========================================

What does not map, because obstore has no counterpart: the ``adaptive``
mode's client-side rate limiting (a token bucket that slows sending after
throttling answers; ``concurrency`` is the lever here), the ``standard`` and
``adaptive`` retry quota (retries stop for a while once many have failed),
and botocore's full-jitter first wait (uniform up to 1 s; obstore waits
``init_backoff`` first, then a random time up to twice the previous wait).
obstore retries server errors (5xx), 429 and ``SlowDown`` answers, dropped
connections, and timeouts of requests that are safe to repeat.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pytest_insight.errors import ConfigurationError

if TYPE_CHECKING:
    from obstore.store import RetryConfig

__all__ = ["DEFAULT_MAX_ATTEMPTS", "RETRY_MODES", "RetrySettings", "from_botocore", "from_environment"]

DEFAULT_MAX_ATTEMPTS = 10
"""Attempts per request when none is configured: three lose about one object in a thousand
when a tenth of requests fail, as a flaky proxy or an overloaded server makes them."""

RETRY_MODES = ("legacy", "standard", "adaptive")
"""botocore's retry modes."""

MAX_BACKOFF = timedelta(seconds=20)
"""The longest wait between attempts: botocore's cap in its standard and adaptive modes."""


@dataclass(frozen=True)
class RetrySettings:
    """How often and how patiently a request is retried.

    Attributes:
        max_attempts: attempts per request, the first included.
        mode: botocore's retry mode, as configured (``standard`` when not).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    mode: str = "standard"

    def retry_config(self) -> RetryConfig:
        """obstore's ``RetryConfig`` for these settings."""
        return {
            "max_retries": self.max_attempts - 1,
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": MAX_BACKOFF, "base": 2},
            "retry_timeout": timedelta(minutes=3),
        }


def _checked(attempts: object, mode: object, *, attempts_from: str, mode_from: str) -> RetrySettings:
    text = str(attempts).strip() if attempts is not None else ""
    if text and (not text.isdigit() or int(text) < 1):
        raise ConfigurationError(f"{attempts_from} must be a whole number >= 1, got {attempts!r}")
    chosen = str(mode or "standard").strip().lower()
    if chosen not in RETRY_MODES:
        raise ConfigurationError(f"{mode_from} must be one of {', '.join(RETRY_MODES)}, got {mode!r}")
    return RetrySettings(int(text) if text else DEFAULT_MAX_ATTEMPTS, chosen)


def from_environment() -> RetrySettings:
    """``AWS_MAX_ATTEMPTS`` and ``AWS_RETRY_MODE`` (when botocore is not installed).

    Raises:
        ConfigurationError: a value botocore would refuse too.
    """
    return _checked(
        os.environ.get("AWS_MAX_ATTEMPTS"),
        os.environ.get("AWS_RETRY_MODE"),
        attempts_from="AWS_MAX_ATTEMPTS",
        mode_from="AWS_RETRY_MODE",
    )


def from_botocore(session: Any) -> RetrySettings:
    """The retry settings botocore resolved: the environment first, then the profile.

    Raises:
        ConfigurationError: a value botocore refuses.
    """
    attempts_from = "max_attempts (AWS_MAX_ATTEMPTS or the profile's max_attempts)"
    try:
        attempts = session.get_config_variable("max_attempts")
    except ValueError as exc:  # botocore converts the text to an int
        raise ConfigurationError(f"{attempts_from} must be a whole number >= 1 ({exc})") from exc
    mode = session.get_config_variable("retry_mode")
    mode_from = "retry_mode (AWS_RETRY_MODE or the profile's retry_mode)"
    return _checked(attempts, mode, attempts_from=attempts_from, mode_from=mode_from)
