"""Timed-metadata cues as the player hands them to Python, and the callbacks that get them.

A cue has the fields of the Amazon IVS Player's ``TextMetadataCue`` (web SDK): ``type``, ``text``,
``description``, ``owner``, ``startTime``, ``endTime``; the kit adds ``programDateTime``. The page
that sends them is not trusted: a cue that does not have this shape is dropped.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any, Literal, TypedDict

log = logging.getLogger("ivs_widgets.widgets.cues")

#: The IVS Player's owner of metadata put with the IVS API (PutMetadata), as its SDKs name it.
OWNER = "metadata.live-video.net"
#: A cue's text is at most this long: PutMetadata takes 1 KB; a stream from elsewhere gets room.
MAX_TEXT = 64 * 1024
_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class TextMetadataCue(TypedDict):
    """One ID3 text frame of the stream, reported when playback reached it."""

    type: Literal["TextMetadataCue"]
    #: The metadata text, exactly as put (untrusted: show it as text, never as HTML).
    text: str
    #: The ID3 frame's description ("" for PutMetadata's).
    description: str
    #: Where it came from: "metadata.live-video.net", the IVS API (PutMetadata).
    owner: str
    #: Stream position (the player's ``position`` timeline), seconds.
    startTime: float
    #: The same as ``startTime``: PutMetadata's metadata is an instant.
    endTime: float
    #: When the frame at ``startTime`` was captured, by the stream's EXT-X-PROGRAM-DATE-TIME
    #: (ISO 8601, UTC), or None when the stream has none. The kit's addition.
    programDateTime: str | None


def cue_from_page(raw: Any) -> TextMetadataCue | None:
    """The cue the page sent, checked field by field; None if it is not one."""
    if not isinstance(raw, dict) or raw.get("type") != "TextMetadataCue":
        return None
    text, description, start = raw.get("text"), raw.get("description"), raw.get("startTime")
    date = raw.get("programDateTime")
    if not (isinstance(text, str) and isinstance(description, str) and len(text) <= MAX_TEXT
            and len(description) <= MAX_TEXT):
        return None
    if isinstance(start, bool) or not isinstance(start, int | float) or not math.isfinite(start):
        return None
    if date is not None and not (isinstance(date, str) and _DATE.fullmatch(date)):
        return None
    return TextMetadataCue(type="TextMetadataCue", text=text, description=description, owner=OWNER,
                           startTime=float(start), endTime=float(start), programDateTime=date)


class CueCallbacks:
    """The ``on_metadata`` callbacks of one player. One that raises stays registered; its first error
    is logged with the traceback, later ones are not, so a broken callback cannot flood the notebook."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[TextMetadataCue], Any]] = []
        self._failed: set[int] = set()

    def register(self, callback: Callable[[TextMetadataCue], Any], remove: bool = False) -> None:
        if remove:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        elif not callable(callback):
            raise TypeError(f"on_metadata needs a callable, not {callback!r}")
        else:
            self._callbacks.append(callback)

    def __call__(self, cue: TextMetadataCue) -> None:
        for callback in list(self._callbacks):
            try:
                callback(cue)
            except Exception:
                if id(callback) not in self._failed:
                    self._failed.add(id(callback))
                    log.warning("on_metadata callback %r raised; the player goes on (later errors of this "
                                "callback are not shown)", callback, exc_info=True)
