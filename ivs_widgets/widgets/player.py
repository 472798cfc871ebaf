"""``PlayerPanel``: a live-video player widget for an HLS playback URL (IVS channel or the sandbox stream).

Python sets what the viewer should get (``url``, ``playing``, ``muted``, ``volume``); the browser
reports what is happening (``state``, ``position``, ``live_latency``, ``error``). The viewer's own
controls write back to the same traits, so Python always sees the player as the viewer left it.
Timed metadata in the stream (what ``PutMetadata`` puts in) reaches Python as cues when playback
reaches them: ``on_metadata(callback)`` and ``cues``.

A stream on the kernel's machine that the browser cannot reach (Binder, JupyterHub, Colab, VS Code
remote) is fetched by the kernel and relayed over this widget's comm (see ``relay.py``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ivs_widgets.widgets.cues import CueCallbacks, TextMetadataCue, cue_from_page
from ivs_widgets.widgets.esm import bundle
from ivs_widgets.widgets.relay import StreamRelay

HERE = Path(__file__).parent
HLS_JS = HERE / "vendor" / "hls.light.min.esm.js"
#: ES modules the view asks the kernel for only when it needs them, so other pages never load them.
MODULES = {"hls.js": HLS_JS, "id3": HERE / "id3.js", "relay": HERE / "relay.js"}
#: Seconds ``wait_for_cue`` gives a page to show the panel before it concludes that none will.
VIEW_GRACE = 5.0
#: ``cues`` keeps the latest ones: a cue every few seconds for hours stays small.
MAX_CUES = 1000
STATES = ("idle", "loading", "playing", "paused", "ended", "error")
ENGINES = ("auto", "native", "hls.js")


class PlayerPanel(anywidget.AnyWidget):
    """``PlayerPanel(url=sandbox.start_test_stream())`` shows a live HLS stream in the notebook."""

    _esm = bundle(HERE / "player.js")
    _css = HERE / "player.css"

    # -- Python -> browser (the viewer's controls write these back) -----------------------------
    url = traitlets.Unicode("", help="HLS playback URL (.m3u8)").tag(sync=True)
    playing = traitlets.Bool(True, help="play (True) or pause (False)").tag(sync=True)
    #: Browsers only start sound-on video after a click on the page, so panels start muted.
    muted = traitlets.Bool(True).tag(sync=True)
    volume = traitlets.Float(1.0, min=0.0, max=1.0).tag(sync=True)
    engine = traitlets.Enum(ENGINES, "auto", help="HLS engine: the browser's own, hls.js, or auto").tag(sync=True)

    # -- browser -> Python ---------------------------------------------------------------------
    state = traitlets.Enum(STATES, "idle", read_only=True).tag(sync=True)
    #: Frequent and per view: not echoed to other views (the browser throttles them to 2/s).
    position = traitlets.Float(0.0, read_only=True, help="currentTime, seconds").tag(sync=True, echo_update=False)
    live_latency = traitlets.Float(None, allow_none=True, read_only=True,
                                   help="seconds behind the live edge; None when not live").tag(
        sync=True, echo_update=False)
    error = traitlets.Unicode("", read_only=True).tag(sync=True)
    engine_in_use = traitlets.Unicode("", read_only=True, help="'native' or 'hls.js' once a URL is loaded").tag(
        sync=True)
    route_in_use = traitlets.Unicode("", read_only=True, help="'direct', or 'relay' when the stream comes through "
                                     "the kernel (the browser cannot reach its host)").tag(sync=True)
    #: Not synced: the page sends each cue once, as playback reaches it.
    cues: traitlets.List[TextMetadataCue] = traitlets.List(
        read_only=True, help=f"timed-metadata cues played so far, oldest first (the latest {MAX_CUES})")

    def __init__(self, url: str = "", **kwargs: Any) -> None:
        super().__init__(url=url, **kwargs)
        self._ended_url: str | None = None  # set by end(): the stream this panel played
        self._relay = StreamRelay(lambda: self.url, lambda content, buffers: self.send(content, buffers))
        self._cue_callbacks = CueCallbacks()
        self._cue_view: str | None = None  # the view whose cues count, when the panel is shown twice
        self._views: set[str] = set()  # the views that said they opened and have not closed
        self._heard = threading.Condition()  # a view opened, or a cue came: wait_for_cue looks again
        self.on_msg(self._on_custom_message)

    def play(self) -> None:
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def mute(self) -> None:
        self.muted = True

    def unmute(self) -> None:
        """Unmute; a browser may still refuse sound until the viewer has clicked on the page."""
        self.muted = False

    def end(self) -> None:
        """Stop watching, but keep the panel on the page: a player that got to play stays paused on its
        last frame; one that never started (the kernel learns what the browser did only between cells)
        shows "No stream" rather than an error once the stream's server is gone. ``close()`` removes it."""
        if self._ended_url is not None:
            return
        self._ended_url = self.url
        if self.state in ("playing", "paused"):
            self.playing = False
        else:
            self.url = ""

    def on_metadata(self, callback: Callable[[TextMetadataCue], Any], remove: bool = False) -> None:
        """Call ``callback(cue)`` for each timed-metadata cue as playback reaches it (``remove=True``
        unregisters it). A cue is a dict shaped like the IVS Player's ``TextMetadataCue``: ``text``,
        ``description``, ``owner``, ``startTime`` … (see ``ivs_widgets.widgets.cues``). Callbacks run
        in the kernel between cells, when it hears from the page; nothing plays without a browser."""
        self._cue_callbacks.register(callback, remove)

    def wait_for_cue(self, text: str, timeout: float = 10.0) -> TextMetadataCue | None:
        """The cue with this ``text`` once playback has reached it, or None after ``timeout`` seconds;
        or None after at most ``VIEW_GRACE`` seconds when no page shows this panel (no browser: under
        nbval, in a script). Only front ends that hand widget messages to the kernel while a cell runs
        (JupyterLab 4.6 and Notebook 7.6: "comms over subshells") deliver views and cues during the
        wait; elsewhere they arrive once the cell ends, and this returns None."""
        deadline = time.monotonic() + timeout

        def played() -> TextMetadataCue | None:
            return next((cue for cue in reversed(self.cues) if cue["text"] == text), None)

        with self._heard:
            if played() is None and not self._views:
                self._heard.wait_for(lambda: bool(self._views), min(timeout, VIEW_GRACE))
            if self._views:
                self._heard.wait_for(lambda: played() is not None, max(0.0, deadline - time.monotonic()))
            return played()

    def reload(self) -> None:
        """Load ``url`` again, e.g. after an error or once a stream that was down is back."""
        self.send({"type": "reload"})

    def _on_custom_message(self, _widget: Any, content: dict[str, Any], _buffers: list[bytes]) -> None:
        kind = content.get("type")
        if kind == "fetch":
            self._relay.handle(content)
        elif kind == "load-module" and content.get("name") in MODULES:
            self.send({"type": "module", "name": content["name"]}, [_module_source(content["name"])])
        elif kind == "cue":
            self._receive_cue(content)
        elif kind in ("view-opened", "view-closed") and isinstance(content.get("view"), str):
            with self._heard:
                if kind == "view-opened":
                    self._views.add(content["view"])
                else:
                    self._views.discard(content["view"])
                    if content["view"] == self._cue_view:
                        self._cue_view = None
                self._heard.notify_all()

    def _receive_cue(self, content: dict[str, Any]) -> None:
        """Each view of the panel plays on its own: only the first view that reports a cue is heard
        (until it closes), so a panel shown twice does not count each cue twice."""
        view, cue = content.get("view"), cue_from_page(content.get("cue"))
        if cue is None or not isinstance(view, str):
            return
        if self._cue_view is None:
            self._cue_view = view
        elif view != self._cue_view:
            return
        with self._heard:
            self.set_trait("cues", [*self.cues[-(MAX_CUES - 1):], cue])
            self._heard.notify_all()
        self._cue_callbacks(cue)

    def __repr__(self) -> str:
        if self._ended_url is not None:
            return f"<PlayerPanel ended, {self._ended_url or 'no url'}>"
        details = [self.state, self.url or "no url"]
        if self.state in ("playing", "paused"):
            details.append(f"at {self.position:.1f} s")
        if self.live_latency is not None:
            details.append(f"{self.live_latency:.1f} s behind live")
        if self.route_in_use == "relay":
            details.append("relayed by the kernel")
        if self.cues:
            details.append(f"{len(self.cues)} cue{'s' if len(self.cues) > 1 else ''}")
        details.append("muted" if self.muted else f"volume {self.volume:.0%}")
        if self.error:
            details.append(f"error: {self.error}")
        return f"<PlayerPanel {', '.join(details)}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@functools.cache
def _module_source(name: str) -> bytes:
    return MODULES[name].read_bytes()
