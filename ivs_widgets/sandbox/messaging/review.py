"""The message review handler: Python callables standing in for Lambda functions.

The service invokes the room's Lambda for every SEND_MESSAGE with a fixed event shape and applies
its verdict. If the function is missing, raises, is slower than 200 ms or answers something
invalid, the room's ``fallbackResult`` decides, and the original content is kept. A Lambda ARN with
no Python function registered is a Lambda that fails on every message: said once per ARN, since the
same line for each message would bury everything else in the log.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ivs_widgets.protocol import rules
from ivs_widgets.protocol.facts import REVIEW_HANDLER_TIMEOUT_SECONDS

log = logging.getLogger("ivs_widgets.sandbox.review")

ReviewHandler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    content: str | None = None
    attributes: dict[str, str] | None = None


class ReviewHandlers:
    """Lambda ARN → Python callable, and the invocation rules of the service."""

    def __init__(self, timeout: float = REVIEW_HANDLER_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._handlers: dict[str, ReviewHandler] = {}
        self._reported_missing: set[str] = set()

    def register(self, arn: str, handler: ReviewHandler) -> None:
        self._handlers[arn] = handler

    async def review(self, room_handler: dict[str, str], event: dict[str, Any], max_length: int) -> Verdict:
        fallback = Verdict(allowed=room_handler.get("fallbackResult", "ALLOW") == "ALLOW")
        handler = self._handlers.get(room_handler["uri"])
        if handler is None:
            self._report_missing(room_handler["uri"], fallback)
            return fallback
        try:
            # A Lambda gets a serialised copy: editing the event must not touch the message or the token.
            result = await asyncio.wait_for(_invoke(handler, copy.deepcopy(event)), self.timeout)
        except TimeoutError:
            log.warning("review handler %s took longer than %.0f ms; applying fallback",
                        room_handler["uri"], self.timeout * 1000)
            return fallback
        except Exception:
            log.warning("review handler %s raised; applying fallback", room_handler["uri"], exc_info=True)
            return fallback
        verdict = _parse(result, max_length)
        if verdict is None:
            log.warning("review handler %s returned an invalid result %r; applying fallback",
                        room_handler["uri"], result)
            return fallback
        return verdict

    def _report_missing(self, arn: str, fallback: Verdict) -> None:
        if arn in self._reported_missing:
            return
        self._reported_missing.add(arn)
        log.warning("no Python function stands in for the review handler %s: every message in its rooms gets the "
                    "room's fallbackResult (%s), as on AWS when the Lambda fails. Register one with "
                    "backend.review_handler(function, name) or Sandbox.register_lambda(arn, function).",
                    arn, "ALLOW" if fallback.allowed else "DENY")


async def _invoke(handler: ReviewHandler, event: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(event)
    # A blocking function runs on a worker thread so a slow one cannot stall the chat loop.
    result = await asyncio.get_running_loop().run_in_executor(None, handler, event)
    return await result if inspect.isawaitable(result) else result


def _parse(result: Any, max_length: int) -> Verdict | None:
    """The verdict in a handler's answer, or None when the answer is not a valid result."""
    if not isinstance(result, dict) or result.get("ReviewResult") not in ("ALLOW", "DENY"):
        return None
    content = result.get("Content")
    attributes = result.get("Attributes")
    if content is not None and (not isinstance(content, str) or rules.content_problem(content, max_length)):
        return None
    if attributes is not None and (not rules.is_string_map(attributes) or not rules.attributes_fit(attributes)):
        return None
    return Verdict(result["ReviewResult"] == "ALLOW", content, attributes)
