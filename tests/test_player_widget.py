"""PlayerPanel's Python side, without a browser: what it sends to the front end and what it accepts back.

The comm is replaced the way ipywidgets' own tests do it (their ``setup_test_comm`` swaps
``comm.create_comm``): a real ``BaseComm`` that records what it would publish to the front end.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import IPython.lib.pretty
import pytest
import traitlets
from comm.base_comm import BaseComm

from ivs_widgets.widgets.cues import TextMetadataCue
from ivs_widgets.widgets.player import HLS_JS, MAX_CUES, MODULES, PlayerPanel

URL = "http://127.0.0.1:8000/live.m3u8"


class RecordingComm(BaseComm):
    def __init__(self, **kwargs: Any) -> None:
        self.published: list[tuple[str, dict[str, Any], list[bytes]]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        self.published.append((msg_type, data or {}, list(buffers or [])))

    def messages(self, method: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [(data, buffers) for kind, data, buffers in self.published
                if kind == "comm_msg" and data.get("method") == method]

    def updates(self) -> list[dict[str, Any]]:
        return [data["state"] for data, _ in self.messages("update")]

    def clear(self) -> None:
        self.published.clear()


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    yield


@pytest.fixture
def panel() -> Iterator[PlayerPanel]:
    widget = PlayerPanel(URL)
    widget.comm.clear()
    yield widget
    widget.close()


def from_browser(panel: PlayerPanel, **state: Any) -> None:
    """What the front end sends when its video or the viewer changes something."""
    panel.comm.handle_msg({"content": {"data": {"method": "update", "state": state}}, "buffers": []})


def custom_from_browser(panel: PlayerPanel, content: dict[str, Any]) -> None:
    panel.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def test_the_front_end_gets_url_controls_and_an_offline_module_on_open() -> None:
    panel = PlayerPanel(URL)
    kind, data, _ = panel.comm.published[0]
    state = data["state"]
    assert kind == "comm_open"
    assert {k: state[k] for k in ("url", "playing", "muted", "volume", "engine", "state")} == {
        "url": URL, "playing": True, "muted": True, "volume": 1.0, "engine": "auto", "state": "idle"}
    assert "export default" in state["_esm"] and ".ivs-player" in state["_css"]
    # Works offline: no module is imported from the network.
    assert not re.search(r"""(\bfrom\s*|\bimport\s*\(\s*)["'](https?:)?//""", state["_esm"])
    panel.close()


@pytest.mark.parametrize(("action", "sent"), [
    (lambda p: p.pause(), {"playing": False}),
    (lambda p: p.unmute(), {"muted": False}),
    (lambda p: setattr(p, "volume", 0.25), {"volume": 0.25}),
    (lambda p: setattr(p, "url", "http://127.0.0.1:9/other.m3u8"), {"url": "http://127.0.0.1:9/other.m3u8"}),
    (lambda p: setattr(p, "engine", "hls.js"), {"engine": "hls.js"}),
])
def test_python_actions_reach_the_front_end(panel: PlayerPanel, action: Any, sent: dict[str, Any]) -> None:
    action(panel)
    assert panel.comm.updates() == [sent]


def test_play_and_mute_after_pause_and_unmute(panel: PlayerPanel) -> None:
    panel.pause()
    panel.unmute()
    panel.play()
    panel.mute()
    assert panel.comm.updates() == [{"playing": False}, {"muted": False}, {"playing": True}, {"muted": True}]
    panel.comm.clear()
    panel.play()  # already playing: nothing to tell the front end
    assert panel.comm.updates() == []


def test_reload_asks_the_front_end_to_load_the_url_again(panel: PlayerPanel) -> None:
    panel.reload()
    assert [data["content"] for data, _ in panel.comm.messages("custom")] == [{"type": "reload"}]


@pytest.mark.parametrize(("name", "value"), [("volume", 1.5), ("volume", -0.1), ("engine", "flash")])
def test_invalid_settings_are_refused_in_python(panel: PlayerPanel, name: str, value: Any) -> None:
    with pytest.raises(traitlets.TraitError):
        setattr(panel, name, value)
    assert panel.comm.updates() == []


@pytest.mark.parametrize(("name", "value"), [
    ("state", "playing"), ("position", 3.0), ("live_latency", 1.0), ("error", "x"), ("engine_in_use", "native")])
def test_what_the_browser_reports_is_read_only_in_python(panel: PlayerPanel, name: str, value: Any) -> None:
    with pytest.raises(traitlets.TraitError):
        setattr(panel, name, value)


def test_browser_reports_reach_python_and_its_observers(panel: PlayerPanel) -> None:
    seen: list[tuple[str, Any]] = []
    panel.observe(lambda change: seen.append((change["name"], change["new"])),
                  names=["state", "position", "live_latency", "engine_in_use"])

    from_browser(panel, state="playing", position=12.5, live_latency=3.25, engine_in_use="native")

    assert (panel.state, panel.position, panel.live_latency, panel.engine_in_use) == ("playing", 12.5, 3.25, "native")
    assert sorted(seen) == [("engine_in_use", "native"), ("live_latency", 3.25), ("position", 12.5),
                            ("state", "playing")]
    # Nothing is sent back as a Python change; the frequent position/latency are not even echoed.
    assert panel.comm.updates() == []
    echoed = [data["state"] for data, _ in panel.comm.messages("echo_update")]
    assert echoed == [{"state": "playing", "engine_in_use": "native"}]

    from_browser(panel, live_latency=None)  # e.g. a VOD or a stream whose edge is unknown
    assert panel.live_latency is None


def test_the_viewers_own_controls_update_python(panel: PlayerPanel) -> None:
    from_browser(panel, playing=False, state="paused", muted=False, volume=0.4)
    assert (panel.playing, panel.state, panel.muted, panel.volume) == (False, "paused", False, 0.4)
    assert panel.comm.updates() == []  # not bounced back as if Python had changed them
    panel.play()
    assert panel.comm.updates() == [{"playing": True}]


def test_an_error_reported_by_the_browser_is_readable(panel: PlayerPanel) -> None:
    from_browser(panel, state="error", error="Cannot play this stream: manifestLoadError, HTTP 404.")
    assert panel.error.startswith("Cannot play")
    assert "error: Cannot play this stream" in repr(panel)


@pytest.mark.parametrize(("name", "path"), [("hls.js", HLS_JS), ("id3", MODULES["id3"]), ("relay", MODULES["relay"])])
def test_a_module_is_sent_only_when_a_browser_asks_for_it(panel: PlayerPanel, name: str, path: Path) -> None:
    assert panel.comm.messages("custom") == []
    custom_from_browser(panel, {"type": "load-module", "name": name})
    [(data, buffers)] = panel.comm.messages("custom")
    assert data["content"] == {"type": "module", "name": name}
    assert [bytes(b) for b in buffers] == [path.read_bytes()]
    assert re.search(rb"\bexport\b", path.read_bytes())  # an ES module the front end can import()

    for other in ({"type": "load-module", "name": "../player.py"}, {"type": "something-else"}):
        custom_from_browser(panel, other)
    assert len(panel.comm.messages("custom")) == 1


def test_the_page_can_have_the_kernel_fetch_only_the_players_own_stream(panel: PlayerPanel) -> None:
    """The relay's other answers are in tests/test_relay.py; this one needs no network."""
    custom_from_browser(panel, {"type": "fetch", "id": "a-1", "url": "http://169.254.169.254/latest/meta-data/"})
    [(data, buffers)] = panel.comm.messages("custom")
    assert data["content"]["id"] == "a-1" and data["content"]["status"] == 0
    assert [bytes(b) for b in buffers] == [b""]


def test_a_relayed_stream_says_so(panel: PlayerPanel) -> None:
    from_browser(panel, state="playing", position=1.0, route_in_use="relay")
    assert repr(panel).endswith("at 1.0 s, relayed by the kernel, muted>")


def test_plain_text_repr_reads_like_the_panel(panel: PlayerPanel) -> None:
    idle = PlayerPanel()
    assert repr(idle) == "<PlayerPanel idle, no url, muted>"
    idle.close()
    from_browser(panel, state="playing", position=12.34, live_latency=3.21, muted=False, volume=0.4)
    text = f"<PlayerPanel playing, {URL}, at 12.3 s, 3.2 s behind live, volume 40%>"
    assert repr(panel) == text
    assert IPython.lib.pretty.pretty(panel) == text
    bundle, _ = panel._repr_mimebundle_()
    assert bundle["text/plain"] == text  # where widgets are not rendered (terminal, static viewers)


def test_end_pauses_a_player_that_played_and_keeps_the_widget(panel: PlayerPanel) -> None:
    from_browser(panel, state="playing", position=3.0)
    panel.end()
    assert panel.playing is False and panel.url == URL and panel.comm is not None
    assert {"playing": False} in panel.comm.updates()
    assert repr(panel) == f"<PlayerPanel ended, {URL}>"
    panel.end()  # twice is fine


def test_end_of_a_player_that_never_started_shows_no_stream(panel: PlayerPanel) -> None:
    panel.end()  # under Run All the kernel has heard nothing from the browser yet
    assert panel.url == "" and {"url": ""} in panel.comm.updates()
    assert repr(panel) == f"<PlayerPanel ended, {URL}>"


def page_cue(text: str, start: float, **fields: Any) -> dict[str, Any]:
    """A cue as the page sends it when playback reaches an ID3 text frame."""
    return {"type": "TextMetadataCue", "text": text, "description": "", "owner": "metadata.live-video.net",
            "startTime": start, "endTime": start, "programDateTime": "2026-01-02T03:04:05.678Z", **fields}


def cue_from_browser(panel: PlayerPanel, cue: Any, view: str = "view-a") -> None:
    custom_from_browser(panel, {"type": "cue", "view": view, "cue": cue})


def test_cues_reach_python_in_the_order_they_played(panel: PlayerPanel) -> None:
    seen: list[TextMetadataCue] = []
    panel.on_metadata(seen.append)
    for number, text in enumerate(["quiz: 2 + 2?", "<b>not html</b>", "ünïcödé ✓"]):
        cue_from_browser(panel, page_cue(text, 10.0 + number))

    assert [cue["text"] for cue in panel.cues] == ["quiz: 2 + 2?", "<b>not html</b>", "ünïcödé ✓"]
    assert seen == panel.cues
    assert seen[0] == {"type": "TextMetadataCue", "text": "quiz: 2 + 2?", "description": "",
                       "owner": "metadata.live-video.net", "startTime": 10.0, "endTime": 10.0,
                       "programDateTime": "2026-01-02T03:04:05.678Z"}
    assert panel.comm.updates() == []  # nothing goes back to the page


def test_cues_can_be_observed_and_are_read_only(panel: PlayerPanel) -> None:
    changes: list[int] = []
    panel.observe(lambda change: changes.append(len(change["new"])), names="cues")
    cue_from_browser(panel, page_cue("a", 1.0))
    cue_from_browser(panel, page_cue("b", 2.0, programDateTime=None))  # a stream without PROGRAM-DATE-TIME
    assert changes == [1, 2]
    assert panel.cues[1]["programDateTime"] is None
    with pytest.raises(traitlets.TraitError):
        panel.cues = []
    assert "2 cues" in repr(panel)


@pytest.mark.parametrize("cue", [
    None, "text", [], {}, page_cue("x", 1.0, type="TextCue"), page_cue("x", float("nan")), page_cue("x", "1"),
    page_cue("x", True), page_cue(3, 1.0), page_cue("x", 1.0, description=None), page_cue("x" * 70_000, 1.0),
    page_cue("x", 1.0, programDateTime="yesterday"), page_cue("x", float("inf")),
])
def test_a_malformed_cue_from_the_page_is_dropped(panel: PlayerPanel, cue: Any) -> None:
    seen: list[TextMetadataCue] = []
    panel.on_metadata(seen.append)
    cue_from_browser(panel, cue)
    custom_from_browser(panel, {"type": "cue", "cue": page_cue("no view", 1.0)})
    assert panel.cues == [] and seen == []


def test_the_owner_and_end_are_the_kits_whatever_the_page_says(panel: PlayerPanel) -> None:
    cue_from_browser(panel, page_cue("x", 4.5, owner="<img src=x>", endTime=99, extra="ignored"))
    assert panel.cues == [{"type": "TextMetadataCue", "text": "x", "description": "",
                           "owner": "metadata.live-video.net", "startTime": 4.5, "endTime": 4.5,
                           "programDateTime": "2026-01-02T03:04:05.678Z"}]


def test_a_callback_that_raises_does_not_break_the_panel(panel: PlayerPanel, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def broken(cue: TextMetadataCue) -> None:
        raise ValueError(f"cannot handle {cue['text']}")

    panel.on_metadata(broken)
    panel.on_metadata(lambda cue: seen.append(cue["text"]))
    with caplog.at_level(logging.WARNING, logger="ivs_widgets.widgets.cues"):
        for text in ("one", "two", "three"):
            cue_from_browser(panel, page_cue(text, 1.0))
    assert seen == ["one", "two", "three"]  # the next callback still runs, every time
    assert len(panel.cues) == 3
    [record] = caplog.records  # reported once, with its traceback
    assert "broken" in record.getMessage() and "cannot handle one" in caplog.text
    from_browser(panel, state="playing", position=2.0)  # the panel still hears from the page
    assert panel.state == "playing"


def test_a_callback_can_be_removed(panel: PlayerPanel) -> None:
    seen: list[TextMetadataCue] = []
    panel.on_metadata(seen.append)
    cue_from_browser(panel, page_cue("one", 1.0))
    panel.on_metadata(seen.append, remove=True)
    panel.on_metadata(print, remove=True)  # never registered: nothing to do
    cue_from_browser(panel, page_cue("two", 2.0))
    assert [cue["text"] for cue in seen] == ["one"]
    with pytest.raises(TypeError, match="callable"):
        panel.on_metadata("not a function")  # type: ignore[arg-type]


def test_a_panel_shown_twice_counts_each_cue_once(panel: PlayerPanel) -> None:
    """Each view plays the stream on its own: the first view that reports is heard until it closes."""
    cue_from_browser(panel, page_cue("one", 1.0), view="first")
    cue_from_browser(panel, page_cue("one", 7.0), view="second")
    custom_from_browser(panel, {"type": "view-closed", "view": "second"})  # not the one heard: no change
    cue_from_browser(panel, page_cue("two", 2.0), view="first")
    cue_from_browser(panel, page_cue("two", 8.0), view="second")
    custom_from_browser(panel, {"type": "view-closed", "view": "first"})
    cue_from_browser(panel, page_cue("three", 9.0), view="second")
    assert [(cue["text"], cue["startTime"]) for cue in panel.cues] == [("one", 1.0), ("two", 2.0), ("three", 9.0)]


def test_cues_keep_the_latest(panel: PlayerPanel) -> None:
    for number in range(MAX_CUES + 5):
        cue_from_browser(panel, page_cue(str(number), float(number)))
    assert len(panel.cues) == MAX_CUES
    assert panel.cues[0]["text"] == "5" and panel.cues[-1]["text"] == str(MAX_CUES + 4)


def test_waiting_for_a_cue_without_a_browser_gives_up(panel: PlayerPanel) -> None:
    """No page shows this panel (under nbval, in a script): nothing can arrive, so the wait ends."""
    assert panel.wait_for_cue("quiz", timeout=0.1) is None


def test_waiting_for_a_cue_returns_it_once_playback_reaches_it(panel: PlayerPanel) -> None:
    custom_from_browser(panel, {"type": "view-opened", "view": "view-a"})
    cue_from_browser(panel, page_cue("earlier", 1.0))
    assert panel.wait_for_cue("earlier")["startTime"] == 1.0  # type: ignore[index]
    # A page that opens and a cue that arrives during the wait (comms over subshells: another thread).
    def page() -> None:
        custom_from_browser(panel, {"type": "view-opened", "view": "view-b"})
        cue_from_browser(panel, page_cue("quiz", 5.0))

    later = threading.Thread(target=page)
    later.start()
    cue = panel.wait_for_cue("quiz", timeout=60)
    later.join()
    assert cue is not None and cue["text"] == "quiz"
    assert panel.wait_for_cue("never put", timeout=0.05) is None
