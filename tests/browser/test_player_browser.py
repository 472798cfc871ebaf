"""PlayerPanel in JupyterLab under real Chromium, playing the sandbox's live HLS test stream.

One notebook shows four panels: ``auto`` (the browser's own HLS engine where it also surfaces timed
metadata, else hls.js), hls.js (vendored, sent by the kernel), and a URL with no stream behind it in
each engine. Next to each panel, an HTML
line shows the panel's ``repr`` as the kernel sees it, and a button calls ``play()`` in the
kernel: so the test sees both directions of the sync through the real page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from labdriver import record_kernel_messages, shut_down_kernels, write_notebook

NOTEBOOK = "player.ipynb"
SETUP = """\
import html
import ipywidgets as w
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.widgets.player import PlayerPanel

sandbox = Sandbox().start()
url = sandbox.start_test_stream()

def with_python_view(panel, name):
    view = w.HTML()
    view.add_class(f"{name}-python")
    panel.observe(lambda _: setattr(view, "value", html.escape(repr(panel))))
    play = w.Button(description="play() from Python")
    play.add_class(f"{name}-play")
    play.on_click(lambda _: panel.play())
    panel.add_class(name)
    return w.VBox([panel, view, play])
"""
PANELS = {
    "auto-engine": "PlayerPanel(url)",
    "hlsjs-engine": 'PlayerPanel(url, engine="hls.js")',
    "broken": 'PlayerPanel(url.replace("live.m3u8", "missing.m3u8"))',
    "broken-hlsjs": 'PlayerPanel(url.replace("live.m3u8", "missing.m3u8"), engine="hls.js")',
}
TIMEOUT_MS = 90_000


def wait_until_advancing(page: Any, video: str) -> None:
    """currentTime moves on by more than a second (frames keep arriving, not one decoded frame)."""
    page.wait_for_function("s => document.querySelector(s)?.currentTime > 0", arg=video, timeout=TIMEOUT_MS)
    start = page.eval_on_selector(video, "v => v.currentTime")
    page.wait_for_function("([s, t]) => document.querySelector(s).currentTime > t + 1", arg=[video, start],
                           timeout=30_000)


def most_reports_in_one_second(reports: list[list[Any]]) -> int:
    """The largest number of position reports one panel sent within any one second."""
    most = 0
    for comm_id in {comm for _, comm in reports}:
        times = sorted(t for t, comm in reports if comm == comm_id)
        most = max(most, max(sum(1 for u in times if t <= u < t + 1000) for t in times))
    return most


def shows(page: Any, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => document.querySelector(s)?.textContent.includes(t)",
                           arg=[selector, text], timeout=30_000)


def python_sees(page: Any, name: str, text: str) -> None:
    """The kernel's repr of panel ``name`` (shown by an HTML widget it updates) contains ``text``."""
    shows(page, f".{name}-python", text)


@pytest.fixture
def notebook_kernel(page: Any, jupyterlab: str) -> Iterator[None]:
    """Shut the notebook's kernel down (and with it the sandbox and ffmpeg) when the test ends."""
    yield
    shut_down_kernels(page, jupyterlab, NOTEBOOK)


@pytest.mark.usefixtures("notebook_kernel")
def test_player_panels_play_the_sandbox_stream_in_jupyterlab(page: Any, jupyterlab: str, lab_root: Path,
                                                             run_all: Any) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    record_kernel_messages(page, '"position"')  # when each position report leaves for the kernel
    outside: list[str] = []  # the page must play with nothing fetched from beyond loopback
    page.on("request", lambda request: outside.append(request.url)
            if urlsplit(request.url).hostname not in (None, "127.0.0.1") else None)
    write_notebook(lab_root / NOTEBOOK, [SETUP, *(f'with_python_view({code}, "{name}")' for name, code in PANELS.items())])
    run_all(NOTEBOOK, timeout_ms=TIMEOUT_MS)
    for name in ("auto-engine", "hlsjs-engine"):
        wait_until_advancing(page, f".{name} video")

    # "auto" takes the browser's own engine where it also surfaces timed metadata (Safari), else hls.js.
    native = page.evaluate("() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl') !== ''"
                           " && ('DataCue' in window || 'WebKitDataCue' in window || !window.MediaSource)")
    assert page.get_attribute(".auto-engine", "data-engine") == ("native" if native else "hls.js")
    assert page.get_attribute(".hlsjs-engine", "data-engine") == "hls.js"
    for name in ("auto-engine", "hlsjs-engine"):  # the page is on loopback too: it fetches the stream itself
        assert page.get_attribute(f".{name}", "data-route") == "direct"
    for name in ("auto-engine", "hlsjs-engine"):
        python_sees(page, name, "playing,")
        python_sees(page, name, "behind live")  # throttled position/latency reports reach the kernel
        shows(page, f".{name} .ivs-player-status", "Playing")

    # The viewer pauses (what the native pause control does); the kernel hears of it.
    page.eval_on_selector(".auto-engine video", "v => v.pause()")
    python_sees(page, "auto-engine", "paused,")
    # play() in the kernel starts the video in the page again.
    page.click(".auto-engine-play")
    wait_until_advancing(page, ".auto-engine video")
    python_sees(page, "auto-engine", "playing,")

    # No stream behind the URL: a clear message in the panel, and the error in Python.
    for name in ("broken", "broken-hlsjs"):
        message = page.wait_for_selector(f".{name} .ivs-player-message", state="visible", timeout=30_000)
        assert "Cannot play" in message.text_content()
        python_sees(page, name, "error: Cannot play")
    assert "HTTP 404" in page.text_content(".broken-hlsjs .ivs-player-message")
    assert problems == []
    assert outside == []
    # Position/latency reports are throttled to 2 a second (plus one sent at once on pause).
    reports = [[message["at"], re.search(r'"comm_id":\s*"([^"]+)"', message["text"])[1]]
               for message in page.evaluate("() => window.kernelMessages")]
    assert len({comm for _, comm in reports}) >= 2, reports
    assert most_reports_in_one_second(reports) <= 3, reports
