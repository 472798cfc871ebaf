"""PresenterDashboard against a real workshop sandbox, with real attendees joining by room code.

The dashboard learns what happens only by polling ``presenter.activity()``: the tests call
``refresh()`` themselves (the polling thread waits an hour) and read the widgets as a browser would
show them, by parsing their HTML into text. Attendees are ``workshop.join`` seats with a real
``ChatRoom`` each; every event and state change they see lands in a queue the test awaits.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from ivs_widgets import workshop
from ivs_widgets.chat.room import ChatError, ChatRoom, ConnectionState, DisconnectReason
from ivs_widgets.protocol import frames
from ivs_widgets.widgets.dashboard import PresenterDashboard
from ivs_widgets.workshop import Presenter, WorkshopError

TIMEOUT = 10.0
#: The polling thread stays out of the way: each test polls with refresh() when it wants to.
NEVER = 3600.0
IMG_XSS = "<img src=x onerror=window.__xss=1>"


class Shown(HTMLParser):
    """An HTML widget's value as a browser shows it: all its text, and its table body rows."""

    def __init__(self, value: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(value)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._cell is not None:
            self._cell.append(data)


def text(widget: Any) -> str:
    return Shown(widget.value).text


def rows(widget: Any) -> list[list[str]]:
    return [row for row in Shown(widget.value).rows if row]  # the header row has th cells only


class Seat:
    """An attendee connected to the workshop room: events and state changes queue up to be awaited."""

    def __init__(self, attendee: workshop.Attendee) -> None:
        self.attendee = attendee
        self.room: ChatRoom = attendee.chat_room()
        self.events: asyncio.Queue[frames.ChatEvent] = asyncio.Queue()
        self.states: asyncio.Queue[tuple[ConnectionState, DisconnectReason | None]] = asyncio.Queue()
        for kind in ("event", "user_disconnect"):
            self.room.on(kind, self.events.put_nowait)
        self.room.on("state", lambda state, reason: self.states.put_nowait((state, reason)))

    @property
    def user_id(self) -> str:
        return self.attendee.user_id

    async def enter(self) -> None:
        """Connect and say hello: the echo proves the sandbox has counted this connection in the room."""
        await asyncio.wait_for(self.room.connect(), TIMEOUT)
        await self.room.send_message("hello")

    async def receive(self, predicate: Callable[[frames.ChatEvent], bool]) -> frames.ChatEvent:
        while True:
            event = await asyncio.wait_for(self.events.get(), TIMEOUT)
            if predicate(event):
                return event

    async def ended(self) -> DisconnectReason | None:
        while True:
            state, reason = await asyncio.wait_for(self.states.get(), TIMEOUT)
            if state is ConnectionState.DISCONNECTED:
                return reason


class CountingPresenter(Presenter):
    """A real Presenter that also counts its activity polls, so a test can await the polling thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls = 0
        self.polled = threading.Condition()

    def activity(self) -> dict[str, Any]:
        try:
            return super().activity()
        finally:
            with self.polled:
                self.polls += 1
                self.polled.notify_all()

    def wait_for_polls(self, count: int) -> None:
        with self.polled:
            assert self.polled.wait_for(lambda: self.polls >= count, TIMEOUT), f"only {self.polls} polls"


@pytest.fixture
def presenter() -> Iterator[Presenter]:
    with workshop.start() as running:
        yield running


@pytest.fixture
def room(presenter: Presenter) -> dict[str, Any]:
    return presenter.client.create_room(name="Workshop")


@pytest.fixture
def invite(presenter: Presenter, room: dict[str, Any]) -> dict[str, Any]:
    return presenter.open_room(room["arn"])


@pytest.fixture
def dashboard(presenter: Presenter, invite: dict[str, Any]) -> Iterator[PresenterDashboard]:
    shown = presenter.dashboard(interval=NEVER)
    yield shown
    shown.close()


@pytest.fixture
async def seat(presenter: Presenter, invite: dict[str, Any]) -> AsyncIterator[Callable[..., Any]]:
    """``await seat("Ada")``: a new attendee joined with the room code, connected and counted."""
    seats: list[Seat] = []

    async def join(name: str, code: str | None = None) -> Seat:
        joined = Seat(workshop.join(presenter.url, code or invite["code"], name, fingerprint=presenter.fingerprint))
        seats.append(joined)
        await joined.enter()
        return joined

    yield join
    for joined in seats:
        await joined.room.disconnect()


async def refreshed_until(dashboard: PresenterDashboard, condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds. The sandbox drops a closed connection from its room a moment
    after the client sees the close: only polling again shows it, as it does for the presenter."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        await asyncio.to_thread(dashboard.refresh)
        if condition():
            return
        assert time.monotonic() < deadline, f"the dashboard never showed {what}: {text(dashboard.users)}"


def user_ids(dashboard: PresenterDashboard) -> list[str]:
    return [row[1] for row in rows(dashboard.users)]


async def test_users_appear_and_disappear_as_attendees_connect_and_leave(
        dashboard: PresenterDashboard, seat: Callable[..., Any]) -> None:
    assert "Nobody is connected" in text(dashboard.users)
    ada, ben = await seat("Ada Lovelace"), await seat("Ben")
    second_tab = Seat(ada.attendee)  # Ada opens the workshop in a second tab: same user, two connections
    await second_tab.enter()
    dashboard.refresh()

    assert rows(dashboard.users) == sorted([["Ada Lovelace", ada.user_id, "2"], ["Ben", ben.user_id, "1"]],
                                           key=lambda row: row[1])
    assert "2 users3 connections" in text(dashboard.totals)
    assert dict((value, label) for label, value in dashboard.user_picker.options) == {
        ada.user_id: f"Ada Lovelace ({ada.user_id})", ben.user_id: f"Ben ({ben.user_id})"}

    await ben.room.disconnect()
    await second_tab.room.disconnect()
    await refreshed_until(dashboard, lambda: user_ids(dashboard) == [ada.user_id], "Ben gone")
    assert rows(dashboard.users) == [["Ada Lovelace", ada.user_id, "1"]]
    assert [value for _, value in dashboard.user_picker.options] == [ada.user_id]


async def test_messages_raise_the_rate_chart_and_the_totals(dashboard: PresenterDashboard,
                                                            seat: Callable[..., Any]) -> None:
    ada = await seat("Ada")  # says hello: one message
    dashboard.refresh()
    assert "1 message" in text(dashboard.totals) and "1 in the last 120 s" in text(dashboard.rate_chart)

    for n in range(4):
        await ada.room.send_message(f"message {n}")
    dashboard.refresh()

    assert "5 messages" in text(dashboard.totals)
    assert "5 in the last 120 s" in text(dashboard.rate_chart)
    bars = [int(count) for count in _attribute_values(dashboard.rate_chart.value, "data-count")]
    assert sum(bars) == 5 and 0 < len(bars) <= 5  # one bar per second that had messages
    assert "limit 10 msg/s" in text(dashboard.rate_chart)


async def test_denials_and_rate_limit_hits_show_in_recent_errors(presenter: Presenter,
                                                                 seat: Callable[..., Any]) -> None:
    slow = presenter.client.create_room(name="Slow", maximumMessageRatePerSecond=1)
    code = presenter.open_room(slow["arn"])["code"]  # the newest open invite: the dashboard shows it first
    dashboard = presenter.dashboard(interval=NEVER)
    try:
        ada = await seat("Ada", code)  # hello uses the room's one message per second
        with pytest.raises(ChatError) as refused:
            await ada.room.delete_message("some-id")
        assert refused.value.code == 403
        for _ in range(5):  # the next message within the same second is refused
            try:
                await ada.room.send_message("too fast")
            except ChatError as error:
                assert error.code == 429
                break
        else:
            pytest.fail("the room never refused a message at 1 per second")
        dashboard.refresh()

        shown = {(row[2], row[3], row[4]) for row in rows(dashboard.errors)}
        assert ("403 not allowed", "connection does not have the DELETE_MESSAGE capability", ada.user_id) in shown
        assert ("429 rate limited", "rate limit exceeded: the room allows 1 messages per second", ada.user_id) in shown
        assert all(row[1] == "chat request" for row in rows(dashboard.errors))
        assert "2 denials" in text(dashboard.totals)
        assert "ivs-dash-bar-limit" in dashboard.rate_chart.value  # a second at the limit shows red
    finally:
        dashboard.close()


async def test_a_refused_join_shows_without_a_user(presenter: Presenter, dashboard: PresenterDashboard) -> None:
    with pytest.raises(WorkshopError):
        workshop.join(presenter.url, "AAAA-AAAA", "Eve", fingerprint=presenter.fingerprint)
    dashboard.refresh()
    [row] = rows(dashboard.errors)
    assert (row[1], row[2], row[4]) == ("join", "404 room not found", "—")


async def test_send_event_reaches_the_attendees(dashboard: PresenterDashboard, seat: Callable[..., Any]) -> None:
    ada = await seat("Ada")
    dashboard.event_name.value = "poll_opened"
    dashboard.event_attributes.value = "question = tea or coffee?\n\nanonymous=yes\n"
    dashboard.send_button.click()

    event = await ada.receive(lambda e: e.event_name == "poll_opened")
    assert event.attributes == {"question": "tea or coffee?", "anonymous": "yes"}
    assert "Sent event “poll_opened” to Workshop." in text(dashboard.status)

    dashboard.event_attributes.value = "question: no equals sign"
    dashboard.send_button.click()
    assert "Event not sent: line 1 is not key=value: question: no equals sign" in text(dashboard.status)
    dashboard.event_attributes.value = ""
    dashboard.event_name.value = "after"
    dashboard.send_button.click()
    assert (await ada.receive(lambda e: True)).event_name == "after"  # nothing was sent in between


async def test_disconnect_user_closes_only_that_attendee(dashboard: PresenterDashboard,
                                                         seat: Callable[..., Any]) -> None:
    ada, ben = await seat("Ada"), await seat("Ben")
    dashboard.refresh()
    dashboard.user_picker.value = ada.user_id
    dashboard.reason.value = "please take a break"
    dashboard.disconnect_button.click()

    for attendee in (ada, ben):
        notice = await attendee.receive(lambda e: isinstance(e, frames.DisconnectUserEvent))
        assert (notice.event_name, notice.user_id, notice.reason) == (
            frames.DISCONNECT_USER_EVENT, ada.user_id, "please take a break")
    assert await ada.ended() is DisconnectReason.SERVER
    assert ben.room.state is ConnectionState.CONNECTED
    await ben.room.send_message("still here")
    assert f"Disconnected Ada ({ada.user_id}) from Workshop." in text(dashboard.status)
    await refreshed_until(dashboard, lambda: user_ids(dashboard) == [ben.user_id], "Ada gone")


async def test_close_room_takes_two_clicks_then_refuses_joins(
        presenter: Presenter, room: dict[str, Any], invite: dict[str, Any], dashboard: PresenterDashboard,
        seat: Callable[..., Any]) -> None:
    ada = await seat("Ada")
    other = presenter.client.create_room(name="Other")
    dashboard.close_button.click()  # armed ...
    assert dashboard.close_button.description == "Click again to close"
    assert "again to close" in text(dashboard.status)
    dashboard.refresh()
    dashboard.room_picker.value = other["arn"]  # ... and disarmed by looking at another room
    dashboard.room_picker.value = room["arn"]
    dashboard.close_button.click()  # armed again, not closed
    dashboard.refresh()
    assert rows(dashboard.invite)[0][:2] == [invite["code"], "open"] and ada.room.state is ConnectionState.CONNECTED

    dashboard.close_button.click()
    assert await ada.ended() is DisconnectReason.SERVER
    assert rows(dashboard.invite)[0][:2] == [invite["code"], "closed"]
    assert dashboard.close_button.disabled
    assert f"Closed {invite['code']}" in text(dashboard.status)
    with pytest.raises(WorkshopError) as refused:
        workshop.join(presenter.url, invite["code"], "Latecomer", fingerprint=presenter.fingerprint)
    assert refused.value.status == 403


async def test_a_failing_action_is_reported_in_words(presenter: Presenter, room: dict[str, Any],
                                                     dashboard: PresenterDashboard, seat: Callable[..., Any]) -> None:
    ada = await seat("Ada")
    dashboard.refresh()
    presenter.client.delete_room(identifier=room["arn"])  # the dashboard has not polled since
    assert await ada.ended() is DisconnectReason.SERVER
    dashboard.disconnect_button.click()
    status = text(dashboard.status)
    assert f"Could not disconnect Ada ({ada.user_id}): ResourceNotFoundException:" in status
    assert "Traceback" not in status

    dashboard.refresh()
    assert "No rooms yet" in text(dashboard.users) and dashboard.disconnect_button.disabled
    dashboard.event_name.value = "ping"
    dashboard.send_button.click()
    assert "Pick a room and type an event name first." in text(dashboard.status)


async def test_markup_in_names_and_event_names_is_escaped(dashboard: PresenterDashboard,
                                                           seat: Callable[..., Any]) -> None:
    await seat(IMG_XSS)
    dashboard.refresh()
    assert rows(dashboard.users)[0][0] == IMG_XSS
    assert "img" not in Shown(dashboard.users.value).tags
    dashboard.event_name.value = "<script>alert(1)</script>"
    dashboard.send_button.click()
    assert "script" not in Shown(dashboard.status.value).tags
    assert "“<script>alert(1)</script>”" in text(dashboard.status)


def test_the_room_of_the_newest_open_invite_is_shown_first(presenter: Presenter) -> None:
    first = presenter.client.create_room(name="First")
    second = presenter.client.create_room(name="Second")
    presenter.open_room(first["arn"])
    dashboard = presenter.dashboard(interval=NEVER)
    try:
        assert dashboard.room_picker.value == first["arn"]
        presenter.close_room(presenter.open_room(second["arn"])["code"])  # newer, but closed
        dashboard.refresh()
        assert dashboard.room_picker.value == first["arn"]
        dashboard.room_picker.value = second["arn"]  # the presenter's choice stays across polls
        dashboard.refresh()
        assert dashboard.room_picker.value == second["arn"]
        assert rows(dashboard.invite)[0][1] == "closed"
    finally:
        dashboard.close()


def test_a_stopped_sandbox_shows_as_status_and_polling_goes_on(presenter: Presenter, invite: dict[str, Any]) -> None:
    counting = CountingPresenter(presenter.url, presenter.sandbox.config.access_key_id,
                                 presenter.sandbox.config.secret_access_key, presenter.region,
                                 ca_file=presenter.ca_file)
    dashboard = counting.dashboard(interval=0.05)
    try:
        assert text(dashboard.connection).startswith("Updated ")
        presenter.close()  # the sandbox stops
        polls = counting.polls
        counting.wait_for_polls(polls + 3)  # the thread keeps polling through the failures
        assert dashboard.polling
        dashboard.refresh()  # does not raise
        shown = text(dashboard.connection)
        assert shown.startswith("Cannot read the workshop's activity (last update ") and "cannot reach" in shown
        assert rows(dashboard.invite)[0][0] == invite["code"]  # the last good figures stay
    finally:
        dashboard.close()

    late = counting.dashboard(interval=NEVER)  # opened on a sandbox that is gone: no exception
    assert "cannot reach the workshop" in text(late.connection)
    late.close()


def test_close_stops_polling_and_closes_the_widgets(presenter: Presenter) -> None:
    counting = CountingPresenter(presenter.url, presenter.sandbox.config.access_key_id,
                                 presenter.sandbox.config.secret_access_key, presenter.region,
                                 ca_file=presenter.ca_file)
    dashboard = counting.dashboard()
    counting.wait_for_polls(2)  # the first poll in the constructor, the next one from the thread
    dashboard.close()

    assert not dashboard.polling
    polls = counting.polls
    dashboard.refresh()
    assert counting.polls == polls
    assert dashboard.comm is None and dashboard.users.comm is None and dashboard.close_button.comm is None


def _attribute_values(markup: str, name: str) -> list[str]:
    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.values: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.values += [value or "" for key, value in attrs if key == name]

    collector = Collect()
    collector.feed(markup)
    return collector.values


def test_end_stops_polling_and_keeps_the_last_view_with_actions_disabled(presenter: Presenter,
                                                                         invite: dict[str, Any]) -> None:
    counting = CountingPresenter(presenter.url, presenter.sandbox.config.access_key_id,
                                 presenter.sandbox.config.secret_access_key, presenter.region,
                                 ca_file=presenter.ca_file)
    dashboard = counting.dashboard()
    counting.wait_for_polls(2)
    dashboard.end()
    assert not dashboard.polling
    polls = counting.polls
    dashboard.refresh()
    assert counting.polls == polls
    assert text(dashboard.connection).startswith("Dashboard stopped (last update ")
    assert rows(dashboard.invite)[0][0] == invite["code"]  # the last figures stay
    assert dashboard.send_button.disabled and dashboard.close_button.disabled
    assert dashboard.comm is not None
    dashboard.close()
