"""PlayerPanel's Python side, without a browser: what it sends to the front end and what it accepts back.

The comm is replaced the way ipywidgets' own tests do it (their ``setup_test_comm`` swaps
``comm.create_comm``): a real ``BaseComm`` that records what it would publish to the front end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import IPython.lib.pretty
import pytest
import traitlets
from comm.base_comm import BaseComm

from ivs_widgets.widgets.player import HLS_JS, MODULES, PlayerPanel

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


@pytest.mark.parametrize(("name", "path"), [("hls.js", HLS_JS), ("relay", MODULES["relay"])])
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
