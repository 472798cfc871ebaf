"""ChatPanel's Python side against a real sandbox, without a browser.

Widgets talk to the browser through a comm. As in ipywidgets' own tests, the comm is replaced by
one that records what the kernel would send, so the tests see exactly the updates a view would
get, and can hand the panel the custom messages its view sends. The other chat users are plain
WebSocket clients; moderation from outside goes through boto3, as an app's backend would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import comm
import pandas as pd
import pytest
from comm.base_comm import BaseComm
from websockets.sync.client import ClientConnection, connect

from ivs_widgets.chat.room import ChatError, ChatToken
from ivs_widgets.protocol import facts as constants
from ivs_widgets.protocol import frames
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.widgets import ChatPanel, LiveStreamPanel
from ivs_widgets.widgets.chat import FLUSH_INTERVAL_SECONDS, SESSION_EXPIRED

TIMEOUT = 10.0
ALL = ("SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER")
LAMBDA = f"arn:aws:lambda:{constants.SANDBOX_REGION}:{constants.SANDBOX_ACCOUNT_ID}:function:review"


class RecordingComm(BaseComm):
    """A comm that records every message the kernel would send to the browser."""

    def __init__(self, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any], threading.Thread]] = []
        self.changed = threading.Condition()
        super().__init__(**kwargs)

    def publish_msg(self, msg_type: str, data: dict[str, Any] | None = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        with self.changed:
            self.sent.append((msg_type, json.loads(json.dumps(data or {})), threading.current_thread()))
            self.changed.notify_all()

    def updates(self) -> list[dict[str, Any]]:
        """The state in each ``update`` message, in order."""
        with self.changed:
            return [data["state"] for kind, data, _ in self.sent
                    if kind == "comm_msg" and data.get("method") == "update"]

    def view_state(self) -> dict[str, Any]:
        """What a view holds now: the opening state with every update applied."""
        with self.changed:
            state = dict(next(data["state"] for kind, data, _ in self.sent if kind == "comm_open"))
        for update in self.updates():
            state.update(update)
        return state

    def wait_for(self, predicate: Callable[[dict[str, Any]], Any], what: str) -> dict[str, Any]:
        """Block until the view's state satisfies ``predicate``; returns that state."""
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.view_state()), TIMEOUT):
                raise AssertionError(f"the view never got {what}; it has {self.view_state()}")
        return self.view_state()

    def from_view(self, **content: Any) -> None:
        """Deliver a custom message as the browser's view sends it with ``model.send``."""
        self.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


class Peer:
    """Another user in the room on the plain ``websockets`` client."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def request(self, content: str) -> str:
        request_id = str(uuid.uuid4())
        self.ws.send(json.dumps({"Action": "SEND_MESSAGE", "RequestId": request_id, "Content": content}))
        return request_id

    def say(self, content: str) -> dict[str, Any]:
        """Send a message and return it as the room delivered it."""
        request_id = self.request(content)
        return self.next(lambda f: f.get("RequestId") == request_id and f["Type"] == "MESSAGE")

    def next(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            frame = json.loads(self.ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if predicate(frame):
                return frame


def provider(ivschat: Any, room_arn: str, user_id: str = "viewer", capabilities: tuple[str, ...] = ALL,
             display_name: str | None = "Viewer") -> Callable[[], ChatToken]:
    """What a notebook's backend does: CreateChatToken for every connection the panel opens."""
    attributes = {"displayName": display_name} if display_name else {}

    def mint() -> ChatToken:
        return ChatToken.from_response(ivschat.create_chat_token(
            roomIdentifier=room_arn, userId=user_id, capabilities=list(capabilities), attributes=attributes))

    return mint


@pytest.fixture
def fast_room(ivschat: Any) -> dict[str, Any]:
    """A room that accepts the service's highest message rate, so bursts are not rate limited."""
    return ivschat.create_room(name="fast", maximumMessageRatePerSecond=100)


@pytest.fixture
def panels() -> Iterator[list[ChatPanel]]:
    made: list[ChatPanel] = []
    yield made
    for panel in made:
        panel.close()


@pytest.fixture
def make_panel(sandbox: Sandbox, ivschat: Any, fast_room: dict[str, Any],
               panels: list[ChatPanel]) -> Callable[..., ChatPanel]:
    def make(room_arn: str | None = None, *, user_id: str = "viewer", token_capabilities: tuple[str, ...] = ALL,
             token_provider: Callable[[], ChatToken] | None = None, **options: Any) -> ChatPanel:
        options.setdefault("capabilities", token_capabilities)
        panel = ChatPanel(sandbox.messaging_endpoint, token_provider or provider(
            ivschat, room_arn or fast_room["arn"], user_id, token_capabilities), **options)
        panels.append(panel)
        panel.comm.wait_for(lambda s: s["connection_state"] == "connected", "connected")
        return panel

    return make


@pytest.fixture
def peers(sandbox: Sandbox, ivschat: Any, fast_room: dict[str, Any]) -> Iterator[Callable[..., Peer]]:
    with contextlib.ExitStack() as stack:
        def make(user_id: str = "alice", display_name: str | None = None) -> Peer:
            attributes = {"displayName": display_name} if display_name else {}
            token = ivschat.create_chat_token(roomIdentifier=fast_room["arn"], userId=user_id,
                                              capabilities=list(ALL), attributes=attributes)["token"]
            # max_queue=None: a peer that never reads its frames must still close at once.
            return Peer(stack.enter_context(connect(sandbox.messaging_endpoint, subprotocols=[token],
                                                    open_timeout=TIMEOUT, max_queue=None)))

        yield make


def has_row(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda state: any(predicate(row) for row in state["history"])


# -- what the view shows ----------------------------------------------------------------------
def test_view_starts_with_title_state_and_limits(make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel(title="Launch party", max_length=200)
    state = panel.comm.wait_for(lambda s: s["status"] == "connected", "the status in words")
    assert (state["title"], state["max_length"], state["history"], state["error"]) == ("Launch party", 200, [], "")
    assert "export default" in state["_esm"] and not re.search(r"^\s*import\s", state["_esm"], re.M)
    assert ".ivs-chat" in state["_css"]


def test_messages_show_display_name_time_and_content(make_panel: Callable[..., ChatPanel],
                                                     peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    named = peers("alice", "Alice").say("hello <b>there</b>")
    anonymous = peers("bob").say("hi")
    state = panel.comm.wait_for(has_row(lambda r: r["id"] == anonymous["Id"]), "bob's message")
    shown = {row["id"]: row for row in state["history"]}
    assert shown[named["Id"]] == {"id": named["Id"], "kind": "message", "time": named["SendTime"], "user": "alice",
                                  "name": "Alice", "text": "hello <b>there</b>"}  # verbatim: the view renders text
    assert (shown[anonymous["Id"]]["name"], shown[anonymous["Id"]]["text"]) == ("bob", "hi")


def test_messages_are_typed_frames_ready_for_a_dataframe(make_panel: Callable[..., ChatPanel],
                                                         peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    said = peers("alice", "Alice").say("one")
    panel.send("two", {"mood": "happy"})
    panel.comm.wait_for(lambda s: len(s["history"]) == 2, "both messages")
    assert all(isinstance(m, frames.ChatMessage) for m in panel.messages)
    table = pd.DataFrame([dataclasses.asdict(m) for m in panel.messages])
    assert list(table["content"]) == ["one", "two"]
    records = pd.DataFrame(panel.to_records())
    assert list(records["display_name"]) == ["Alice", "Viewer"]
    assert records["id"][0] == said["Id"] and records["attributes"][1] == {"mood": "happy"}
    assert records["time"][0].year >= 2024


def test_custom_events_are_rows_of_their_own(make_panel: Callable[..., ChatPanel], ivschat: Any,
                                            fast_room: dict[str, Any]) -> None:
    panel = make_panel()
    seen: list[frames.ChatEvent] = []
    panel.on_event(seen.append)
    event_id = ivschat.send_event(roomIdentifier=fast_room["arn"], eventName="match_started",
                                  attributes={"round": "3"})["id"]
    state = panel.comm.wait_for(has_row(lambda r: r["id"] == event_id), "the event")
    assert state["history"][-1] == {"id": event_id, "kind": "event", "time": seen[0].send_time,
                                    "event": "match_started", "attrs": {"round": "3"}}
    assert [e.event_name for e in seen] == ["match_started"] and panel.messages == []


def test_repr_is_readable_text(make_panel: Callable[..., ChatPanel], sandbox: Sandbox) -> None:
    panel = make_panel(title="Lobby")
    panel.send("hi")
    assert repr(panel) == f"ChatPanel('Lobby' at {sandbox.messaging_endpoint}, connected, 1 message)"
    assert panel._repr_mimebundle_()[0]["text/plain"] == repr(panel)


# -- actions ----------------------------------------------------------------------------------
def test_send_from_python_and_from_the_view_reaches_others(make_panel: Callable[..., ChatPanel],
                                                          peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    alice = peers("alice")
    sent = panel.send("from python", {"lang": "en"})
    got = alice.next(lambda f: f["Type"] == "MESSAGE")
    assert (got["Id"], got["Content"], got["Attributes"], got["Sender"]["UserId"]) == (
        sent.id, "from python", {"lang": "en"}, "viewer")
    panel.comm.from_view(action="send", content="typed in the browser")
    assert alice.next(lambda f: f["Type"] == "MESSAGE")["Content"] == "typed in the browser"
    panel.comm.wait_for(has_row(lambda r: r["text"] == "typed in the browser"), "the typed message")


def test_deleted_messages_disappear(make_panel: Callable[..., ChatPanel], peers: Callable[..., Peer],
                                    ivschat: Any, fast_room: dict[str, Any]) -> None:
    panel = make_panel()
    alice = peers("alice")
    by_view, by_python, by_backend, kept = (alice.say(text)["Id"] for text in ("a", "b", "c", "d"))
    panel.comm.wait_for(has_row(lambda r: r["id"] == kept), "all four messages")
    panel.comm.from_view(action="delete", id=by_view)
    panel.delete(by_python, reason="spam")
    ivschat.delete_message(roomIdentifier=fast_room["arn"], id=by_backend)
    state = panel.comm.wait_for(lambda s: [r["id"] for r in s["history"]] == [kept], "only the kept message")
    assert [m.id for m in panel.messages] == [kept] and state["error"] == ""


def test_moderator_disconnects_a_user_from_the_view(make_panel: Callable[..., ChatPanel],
                                                    peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    alice = peers("alice")
    alice.say("trouble")
    panel.comm.from_view(action="disconnect", user_id="alice")
    event = alice.next(lambda f: f.get("EventName") == frames.DISCONNECT_USER_EVENT)
    alice.ws.recv_events_thread.join(TIMEOUT)  # the server closes alice's connection
    assert alice.ws.close_code == 1000
    panel.comm.wait_for(has_row(lambda r: r == {"id": event["Id"], "kind": "notice", "time": event["SendTime"],
                                                "text": "alice was disconnected by a moderator"}), "the notice")
    panel.disconnect_user("alice", reason="still here?")
    panel.comm.wait_for(has_row(lambda r: r["text"] == "alice was disconnected by a moderator: still here?"),
                        "the notice with a reason")


def test_a_disconnected_viewer_sees_why_and_can_reconnect(make_panel: Callable[..., ChatPanel], ivschat: Any,
                                                         fast_room: dict[str, Any]) -> None:
    panel = make_panel()
    panel.send("hello")  # the room tells the panel who it is through the echo
    ivschat.disconnect_user(roomIdentifier=fast_room["arn"], userId="viewer", reason="be nice")
    state = panel.comm.wait_for(lambda s: s["connection_state"] == "disconnected", "the disconnect")
    assert state["status"] == "disconnected by a moderator"
    panel.comm.from_view(action="connect")
    panel.comm.wait_for(lambda s: s["status"] == "connected", "the reconnect")
    panel.send("back")
    panel.disconnect()
    assert panel.comm.wait_for(lambda s: s["connection_state"] == "disconnected", "leaving")["status"] == "disconnected"


def test_moderator_controls_only_with_the_capabilities(make_panel: Callable[..., ChatPanel]) -> None:
    def flags(panel: ChatPanel) -> tuple[bool, bool, bool]:
        state = panel.comm.view_state()
        return state["can_send"], state["can_delete"], state["can_disconnect"]

    assert flags(make_panel(capabilities=ALL)) == (True, True, True)
    assert flags(make_panel(capabilities=["SEND_MESSAGE", "DELETE_MESSAGE"])) == (True, True, False)
    assert flags(make_panel(capabilities=["SEND_MESSAGE"])) == (True, False, False)
    assert flags(make_panel(capabilities=[], token_capabilities=())) == (False, False, False)
    assert flags(make_panel(capabilities=None)) == (True, False, False)  # unknown: offer sending, not moderation


# -- errors in words ----------------------------------------------------------------------------
def failure(panel: ChatPanel, text: str) -> tuple[int, str]:
    """Send ``text``; the error code raised and the words the view shows."""
    errors: list[ChatError] = []
    unsubscribe = panel.on_error(errors.append)
    with pytest.raises(ChatError) as raised:
        panel.send(text)
    unsubscribe()
    assert errors == [raised.value]
    words = panel.comm.wait_for(lambda s: s["error"], "an error")["error"]
    return raised.value.code, words


def test_too_long_and_rate_limited_in_words(make_panel: Callable[..., ChatPanel], ivschat: Any) -> None:
    room = ivschat.create_room(maximumMessageLength=10, maximumMessageRatePerSecond=1)
    panel = make_panel(room["arn"], max_length=10)
    assert failure(panel, "x" * 11) == (400, "Message not sent: too long")
    panel.send("ok")
    panel.comm.wait_for(lambda s: s["error"] == "", "the error cleared by a sent message")
    assert failure(panel, "again") == (429, "Message not sent: rate limited")


def test_denied_by_moderation_in_words(make_panel: Callable[..., ChatPanel], ivschat: Any,
                                       sandbox: Sandbox) -> None:
    sandbox.register_lambda(LAMBDA, lambda event: {"ReviewResult": "DENY"})
    room = ivschat.create_room(messageReviewHandler={"uri": LAMBDA, "fallbackResult": "ALLOW"})
    assert failure(make_panel(room["arn"]), "buy now") == (406, "Message not sent: denied by moderation")


def test_not_allowed_in_words(make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel(token_capabilities=(), capabilities=None)  # the backend did not say: try, and explain
    assert failure(panel, "hi") == (403, "Message not sent: not allowed")
    with pytest.raises(ChatError):
        panel.delete("AbCdEfGhIjKl")
    assert panel.comm.wait_for(lambda s: "delete" in s["error"], "the delete error")["error"] == \
        "Could not delete the message: not allowed"


def test_session_expiry_shows_and_reconnects(make_panel: Callable[..., ChatPanel], sandbox: Sandbox,
                                             fast_room: dict[str, Any]) -> None:
    lifetimes = itertools.chain([2.0], itertools.repeat(3600.0))

    def short_first_session() -> ChatToken:
        return ChatToken.from_response(sandbox.control.mint_token(fast_room["arn"], "viewer", ALL,
                                                                  session_seconds=next(lifetimes)))

    panel = make_panel(token_provider=short_first_session)
    errors: list[ChatError] = []
    panel.on_error(errors.append)
    panel.comm.wait_for(has_row(lambda r: r["kind"] == "notice" and r["text"] == SESSION_EXPIRED),
                        "the session expiry notice")
    panel.comm.wait_for(lambda s: s["status"] == "connected", "the reconnect")
    assert panel.send("still here").content == "still here"
    assert [e.code for e in errors] == [401] and panel.comm.view_state()["error"] == ""


# -- batching, cap and threads ---------------------------------------------------------------
def test_a_burst_reaches_the_view_in_few_batches(make_panel: Callable[..., ChatPanel],
                                                  peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    arrivals: list[float] = []
    panel.on_message(lambda message: arrivals.append(time.monotonic()))
    alice = peers("alice")
    before = len(panel.comm.updates())
    burst = 100
    for n in range(burst):
        alice.request(f"message {n}")
    state = panel.comm.wait_for(lambda s: len(s["history"]) == burst, "the whole burst")
    assert [row["text"] for row in state["history"]] == [f"message {n}" for n in range(burst)]
    batches = [u for u in panel.comm.updates()[before:] if "history" in u]
    # However long the burst took to arrive, at most one update per interval (plus the first and last).
    allowed = (arrivals[-1] - arrivals[0]) / FLUSH_INTERVAL_SECONDS + 2
    assert len(batches) <= allowed and len(batches) < burst, f"{len(batches)} updates for {burst} messages"


def test_updates_are_at_least_a_flush_interval_apart() -> None:
    # Events one after another, each answered before the next, until three updates have gone out:
    # however fast they come, the view gets at most one update per interval.
    with Sandbox(quota_tps={"SendEvent": 1_000_000}) as sandbox:
        ivschat = sandbox.client()
        room_arn = ivschat.create_room()["arn"]
        panel = ChatPanel(sandbox.messaging_endpoint, provider(ivschat, room_arn))
        try:
            stamps: list[float] = []
            panel.observe(lambda change: stamps.append(time.monotonic()), names="history")
            sent = 0
            deadline = time.monotonic() + TIMEOUT
            while len(stamps) < 3 and time.monotonic() < deadline:
                ivschat.send_event(roomIdentifier=room_arn, eventName="tick")
                sent += 1
            updates = list(stamps)  # close() sends the final state at once: not part of the stream
        finally:
            panel.close()
    gaps = [later - earlier for earlier, later in zip(updates, updates[1:])]
    assert len(updates) >= 3 and sent > len(updates) and min(gaps) >= FLUSH_INTERVAL_SECONDS * 0.9, (sent, gaps)


def test_history_is_capped_in_python_and_in_the_view(make_panel: Callable[..., ChatPanel],
                                                     peers: Callable[..., Peer]) -> None:
    panel = make_panel(history_limit=5)
    alice = peers("alice")
    ids = [alice.say(f"m{n}")["Id"] for n in range(12)]
    state = panel.comm.wait_for(lambda s: s["history"] and s["history"][-1]["id"] == ids[-1], "the last message")
    assert [row["id"] for row in state["history"]] == ids[-5:]
    assert [m.id for m in panel.messages] == ids[-5:]


def test_receives_while_the_main_thread_is_busy(make_panel: Callable[..., ChatPanel],
                                                peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    arrived = threading.Event()
    on_thread: list[threading.Thread] = []
    panel.on_message(lambda m: (on_thread.append(threading.current_thread()), arrived.set()))
    alice = peers("alice")
    alice.request("while you were busy")
    # The main thread now blocks, as a long-running cell does; nothing here runs an event loop.
    assert arrived.wait(TIMEOUT)
    state = panel.comm.wait_for(has_row(lambda r: r["text"] == "while you were busy"), "the message")
    with panel.comm.changed:
        senders = {thread for kind, data, thread in panel.comm.sent if kind == "comm_msg"}
    assert state["connection_state"] == "connected"
    assert on_thread[0] is not threading.main_thread() and threading.main_thread() not in senders


def test_close_disconnects_and_closes_the_widget(make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel()
    recorded = panel.comm
    panel.close()
    assert recorded.sent[-1][0] == "comm_close" and panel.comm is None
    assert recorded.view_state()["connection_state"] == "disconnected"
    assert repr(panel).endswith("disconnected, 0 messages)")
    panel.close()  # twice is fine


def test_live_stream_panel_puts_player_and_chat_side_by_side(sandbox: Sandbox, ivschat: Any,
                                                             fast_room: dict[str, Any]) -> None:
    live = LiveStreamPanel("http://127.0.0.1:9/live.m3u8", token_provider=provider(ivschat, fast_room["arn"]),
                           messaging_url=sandbox.messaging_endpoint, title="Stage", capabilities=ALL)
    try:
        assert list(live.children) == [live.player, live.chat]
        assert live.player.url == "http://127.0.0.1:9/live.m3u8" and live.chat.title == "Stage"
        assert live.chat.send("hi").content == "hi"
        assert "connected, 1 message" in repr(live)
    finally:
        live.close()
    assert live.chat.comm is None and live.player.comm is None


def test_wait_for_returns_once_a_sent_message_is_shown_and_times_out_otherwise(
        sandbox: Any, ivschat: Any, room: dict[str, Any]) -> None:
    from ivs_widgets.backend import Backend

    backend = Backend("sandbox", sandbox.region, ivschat, sandbox.messaging_endpoint)
    panel = backend.chat_panel(room["arn"], "you", display_name="You")
    try:
        assert panel.max_length == room["maximumMessageLength"] and panel.title == "test-room"
        panel.send("first")
        panel.wait_for(lambda: [m.content for m in panel.messages] == ["first"], timeout=5)
        with pytest.raises(TimeoutError):
            panel.wait_for(lambda: len(panel.messages) == 2, timeout=0.2)
    finally:
        panel.close()


def test_prefill_shows_a_late_joiner_the_logged_messages_before_live_ones(
        sandbox: Any, ivschat: Any, room: dict[str, Any]) -> None:
    from ivs_widgets.backend import Backend
    from ivs_widgets.protocol import frames

    earlier = [frames.ChatMessage(id=f"earlier{i:05d}", content=f"logged {i}", sender=frames.Sender("old", {}),
                                  send_time=f"2020-01-01T00:00:0{i}Z") for i in range(3)]
    backend = Backend("sandbox", sandbox.region, ivschat, sandbox.messaging_endpoint)
    panel = backend.chat_panel(room["arn"], "late", display_name="Late")
    try:
        panel.send("live")
        panel.wait_for(lambda: len(panel.messages) == 1)
        panel.prefill(earlier)
        panel.prefill(earlier[:1])  # already shown: not repeated
        assert [m.content for m in panel.messages] == ["logged 0", "logged 1", "logged 2", "live"]
        panel.wait_for(lambda: [row["text"] for row in panel.history] == ["logged 0", "logged 1", "logged 2", "live"])
    finally:
        panel.close()


# -- the end of a notebook, and cells that survive a learner -----------------------------------
def test_end_leaves_the_panel_on_the_page_with_its_messages_marked_ended(make_panel: Callable[..., ChatPanel],
                                                                          peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    peers("alice", "Alice").say("before the end")
    panel.wait_for_message(lambda m: m.content == "before the end")
    recorded = panel.comm
    panel.end()
    assert panel.comm is recorded and recorded.sent[-1][0] != "comm_close"  # the widget stays
    state = recorded.view_state()
    assert (state["connection_state"], state["status"]) == ("ended", "chat ended")
    assert [row["text"] for row in state["history"]] == ["before the end"]
    assert repr(panel).endswith("ended, 1 message)")
    with pytest.raises(RuntimeError, match="run the notebook again"):
        panel.send("after the end")
    recorded.from_view(action="connect")  # the view's Reconnect does nothing once ended
    recorded.from_view(action="send", content="typed after the end")
    assert panel.typed_messages(timeout=1) == []
    panel.end()  # twice is fine
    panel.close()  # and close() still removes it
    assert recorded.sent[-1][0] == "comm_close"


def test_transcript_is_the_conversation_as_text_and_escaped_html(make_panel: Callable[..., ChatPanel],
                                                                 peers: Callable[..., Peer], ivschat: Any,
                                                                 fast_room: dict[str, Any]) -> None:
    panel = make_panel(title="Stage")
    peers("mallory", "<b>Mallory</b>").say("<img src=x onerror=alert(1)>")
    ivschat.send_event(roomIdentifier=fast_room["arn"], eventName="poll", attributes={"q": "tea?"})
    panel.wait_for(lambda: len(panel.history) == 2)
    panel.end()
    transcript = panel.transcript()
    lines = str(transcript).splitlines()
    assert lines[0] == "Chat 'Stage' (chat ended): 1 message, times in UTC"
    assert re.fullmatch(r"\d\d:\d\d:\d\d  <b>Mallory</b>: <img src=x onerror=alert\(1\)>", lines[1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d  \[event\] poll q=tea\?", lines[2])
    markup = transcript._repr_html_()
    assert "<img" not in markup and "<b>Mallory" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup and "&lt;b&gt;Mallory&lt;/b&gt;" in markup
    assert repr(transcript) == str(transcript)


def test_wait_for_message_waits_for_that_message_whatever_else_arrives(make_panel: Callable[..., ChatPanel],
                                                                       peers: Callable[..., Peer]) -> None:
    panel = make_panel()
    alice = peers("alice")
    alice.say("noise one")
    wanted = alice.say("the one")
    last = alice.say("noise two")
    assert panel.wait_for_message(wanted["Id"]).content == "the one"
    panel.wait_for_message(last["Id"])
    assert panel.wait_for_message(lambda m: m.content.startswith("noise")).content == "noise two"  # the newest
    with pytest.raises(TimeoutError, match="within 0.2 s: run the cell above first"):
        panel.wait_for_message("NoSuchMessage", timeout=0.2, hint="run the cell above first")


def test_typed_messages_are_those_the_viewer_typed_including_one_on_its_way(
        make_panel: Callable[..., ChatPanel]) -> None:
    panel = make_panel()
    panel.send("from python")
    panel.comm.from_view(action="send", content="typed one")
    panel.comm.from_view(action="send", content="typed two")
    # No waiting before: typed_messages waits for the room's answers to messages already sent.
    assert [m.content for m in panel.typed_messages()] == ["typed one", "typed two"]
    panel.comm.from_view(action="send", content="x" * 1000)  # refused as too long: not in the history
    assert [m.content for m in panel.typed_messages()] == ["typed one", "typed two"]
