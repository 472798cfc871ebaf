"""The one exception base of the kit, with the fields callers branch on.

Every error the kit raises (a refused API request, a bad frame, a failed chat request, a refused
workshop join, an unreadable chat log, a stream that will not start) is an :class:`IvsWidgetsError`.
Callers read ``code``, ``reason`` and ``fields``; nobody needs to parse the message.
"""

from __future__ import annotations

from collections.abc import Iterable


class IvsWidgetsError(Exception):
    """Base of every error raised by ivs-widgets.

    ``code`` names what failed the way the wire does (an AWS error name such as
    ``"ValidationException"``, or a chat ERROR code such as ``429``); ``reason`` is the machine-readable
    cause where the wire gives one (a ValidationException's ``reason``, a chat connection's
    ``DisconnectReason``); ``fields`` lists the request members at fault; ``message`` is the sentence.
    """

    def __init__(self, message: str, *, code: str | int = "", reason: str = "", fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code: str | int = code
        self.reason = reason
        self.fields: tuple[str, ...] = tuple(fields)
