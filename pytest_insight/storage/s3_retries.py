"""botocore's retry handlers for the direct GET, PUT and LIST of :mod:`~pytest_insight.storage.s3_direct`.

A boto3 client wires its retry handlers to its own event chain, and its
calls emit the events they listen to. The direct calls skip that chain, so
this wires the same handlers, built by botocore's own factories for the
client's retry mode and attempt count, to a private emitter, and emits what
they listen to around every attempt:

- ``before-send``: adaptive mode's rate limiter takes a token (once it has
  seen throttling);
- ``needs-retry``, after every attempt: the standard conditions, backoff and
  retry quota decide whether and when to try again, and adaptive mode's
  limiter learns the send rate and of every throttling answer;
- ``after-call``, after a success: the retry quota gets its cost back.

So a long outage drains the quota and later failures are not retried (the
import then reports them at once instead of backing off on every object), as
with any boto3 call. The client's ``legacy`` mode gets the standard handlers.
The direct calls have their own quota and limiter beside the client's: the
client's count the listing and deletes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.hooks import HierarchicalEmitter, first_non_none_response
from botocore.model import OperationModel
from botocore.retries import adaptive, standard

__all__ = ["DEFAULT_ATTEMPTS", "DirectRetries"]

DEFAULT_ATTEMPTS = 3
"""botocore's standard mode, when the client's config names no attempt count."""


class DirectRetries:
    """The retry handlers of one client's mode, on a private emitter. Thread-safe, as botocore's are."""

    def __init__(self, client: Any) -> None:
        config = client.meta.config.retries or {}
        self.attempts: int = config.get("total_max_attempts") or DEFAULT_ATTEMPTS
        self._events = HierarchicalEmitter()
        # the two parts of a client the factories wire to: its events and its service model
        wiring: Any = SimpleNamespace(
            meta=SimpleNamespace(events=self._events, service_model=client.meta.service_model)
        )
        standard.register_retry_handler(wiring, max_attempts=self.attempts)
        if config.get("mode") == "adaptive":
            adaptive.register_retry_handler(wiring)

    def sending(self, model: OperationModel, request: AWSPreparedRequest) -> None:
        """Before each attempt's request goes out (adaptive mode may wait here)."""
        self._events.emit(f"before-send.s3.{model.name}", request=request)

    def delay(
        self,
        model: OperationModel,
        attempt: int,
        context: dict[str, Any],
        *,
        response: tuple[AWSResponse, Any] | None = None,
        caught: Exception | None = None,
    ) -> float | None:
        """After each attempt: seconds to wait before the next one, or None when there is none.

        Args:
            model: the operation.
            attempt: the attempt just made, from 1.
            context: one call's retry state, the same dict for all its attempts.
            response: the HTTP response and its parsed form (``Error`` for a
                refusal), when one came.
            caught: the exception instead, when none came (connection, body).
        """
        answers = self._events.emit(
            f"needs-retry.s3.{model.name}",
            response=response,
            endpoint=None,
            operation=model,
            attempts=attempt,
            caught_exception=caught,
            request_dict={"context": context},
        )
        wait = first_non_none_response(answers)
        return None if wait is None or wait is False else float(wait)

    def succeeded(self, model: OperationModel, attempt: int, context: dict[str, Any], status: int) -> None:
        """After the attempt that answered ``status`` (412 too): the limiter and the quota hear of it."""
        response = AWSResponse("", status, HTTPHeaders(), None)
        parsed = {"ResponseMetadata": {"HTTPStatusCode": status}}
        self.delay(model, attempt, context, response=(response, parsed))
        self._events.emit(
            f"after-call.s3.{model.name}", http_response=response, parsed=parsed, model=model, context=context
        )
