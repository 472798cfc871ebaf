"""Timed metadata end to end: PutMetadata on a live sandbox channel reaches Python as cues of a PlayerPanel
playing it in JupyterLab under real Chromium, in order, each at the stream position where it was put.

The test process runs the sandbox and the encoder (``Sandbox.go_live``: the built-in source over RTMP)
and calls PutMetadata; the notebook's kernel only shows ``PlayerPanel(playback_url)`` and, beside it,
the kernel's own ``panel.cues`` as JSON in an HTML widget, so what the test reads is what reached Python.

How "at the position where it was put" is measured: the packager stamps each segment with
EXT-X-PROGRAM-DATE-TIME, the wall clock at which the ingest received its first frame, so a position
in the stream maps to the moment it was live. A cue carries that moment for its own position
(``programDateTime``); it must be within 1 s of the wall clock at which the test called PutMetadata
(same machine, same clock). And the page must hand the cue over when playback reaches it, not when
its segment arrives (a segment or more earlier): the page records its video's currentTime as each cue
message leaves for the kernel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from labdriver import only_the_server, record_kernel_messages, shut_down_kernels, write_notebook

NOTEBOOK = "player-cues.ipynb"
CELL = """\
import html, json
import ipywidgets as w
from ivs_widgets.widgets.player import PlayerPanel

panel = PlayerPanel({url!r})
panel.add_class("cues-player")
python_view = w.HTML()
python_view.add_class("cues-python")
panel.observe(lambda _: setattr(python_view, "value", html.escape(json.dumps(panel.cues))), names="cues")
w.VBox([panel, python_view])
"""
TIMEOUT_MS = 90_000
QUIZ = ['{"question": "Which protocol carries the chat?", "answers": ["WebSocket", "RTMP"]}',
        "<b>not html</b> & ünïcödé ✓", "the third one"]


@pytest.fixture
def live_channel() -> Iterator[tuple[Any, Any]]:
    """A sandbox in the test process with a channel live from the built-in source, and its ivs client."""
    from ivs_widgets.sandbox import Sandbox

    with Sandbox() as sandbox:
        feed = sandbox.go_live()
        try:
            yield feed, sandbox.client("ivs")
        finally:
            feed.stop()


def python_cues(page: Any) -> list[dict[str, Any]]:
    return json.loads(page.text_content(".cues-python") or "[]")


def wait_for_cues(page: Any, count: int) -> None:
    page.wait_for_function("n => JSON.parse(document.querySelector('.cues-python')?.textContent || '[]').length >= n",
                           arg=count, timeout=30_000)


@pytest.mark.parametrize("route", ["direct", "relay"])
def test_put_metadata_reaches_python_as_cues_where_it_was_put(page: Any, jupyterlab: str, lab_root: Any,
                                                              run_all: Any, live_channel: tuple[Any, Any],
                                                              route: str) -> None:
    feed, ivs = live_channel
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    record_kernel_messages(page, '"TextMetadataCue"')
    if route == "relay":  # as on a hub: the page reaches the Jupyter server and nothing else of this machine
        only_the_server(page, jupyterlab)
    write_notebook(lab_root / NOTEBOOK, [CELL.format(url=feed.playback_url)])
    try:
        run_all(NOTEBOOK, timeout_ms=TIMEOUT_MS)
        video = ".cues-player video"
        page.wait_for_function("s => document.querySelector(s)?.currentTime > 1", arg=video, timeout=TIMEOUT_MS)
        assert page.get_attribute(".cues-player", "data-route") == route

        put_at = []
        for number, text in enumerate(QUIZ, start=1):
            put_at.append(time.time())
            ivs.put_metadata(channelArn=feed.channel_arn, metadata=text)
            wait_for_cues(page, number)  # each one reaches Python before the next is put

        cues = python_cues(page)
        assert [cue["text"] for cue in cues] == QUIZ
        assert all(cue["type"] == "TextMetadataCue" and cue["owner"] == "metadata.live-video.net" for cue in cues)
        starts = [cue["startTime"] for cue in cues]
        assert starts == sorted(starts)
        for cue, put in zip(cues, put_at, strict=True):
            live_at = datetime.fromisoformat(cue["programDateTime"]).timestamp()
            assert abs(live_at - put) <= 1.0, (cue, put)

        # Handed over when playback reached the cue's position, not when its segment was parsed.
        positions = [message["positions"][0] for message in page.evaluate("() => window.kernelMessages")]
        assert len(positions) == len(QUIZ), positions
        for position, cue in zip(positions, cues, strict=True):
            assert -0.01 < position - cue["startTime"] < 0.5, (position, cue)
        assert problems == []
    finally:
        shut_down_kernels(page, jupyterlab, NOTEBOOK)
