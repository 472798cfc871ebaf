"""``PresenterDashboard``: what is happening in a workshop's rooms, and the presenter's controls.

It polls ``presenter.activity()`` on a daemon thread and shows, for the room picked: who is
connected, messages per second over the last two minutes against the room's rate limit, totals,
recent denials and errors, and the room's invite. Its actions send an event, disconnect a user and
close the room (two clicks, so one stray click does not end a workshop).

Display names, user ids, event names and error messages come from attendees: every string put into
an ``ipywidgets.HTML`` value goes through ``html.escape``, and the rate chart's SVG is built from
numbers only. Dropdown options and button captions are shown by ipywidgets as text.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets
from botocore.exceptions import ClientError

from ivs_widgets.widgets.chat import ERROR_WORDS

log = logging.getLogger("ivs_widgets.widgets.dashboard")

CSS = (Path(__file__).parent / "dashboard.css").read_text()
DEFAULT_INTERVAL_SECONDS = 1.0
#: Rows of recent denials and errors shown, newest first.
ERRORS_SHOWN = 15
#: Rate chart geometry, in SVG units: one bar per second.
BAR_WIDTH, BAR_GAP, CHART_HEIGHT = 2, 1, 60
CLOSE_LABEL = "Close room"
KIND_WORDS = {"message": "chat request", "handshake": "connect", "join": "join"}


class PresenterDashboard(ipywidgets.VBox):
    """``presenter.dashboard()``: a live view of the workshop's rooms, refreshed every ``interval`` seconds.

    ``refresh()`` polls once now; ``end()`` stops polling and keeps the last view on the page (for a
    notebook's clean-up); ``close()`` stops polling and closes the widgets. A sandbox that stops
    answering shows as a status message, and polling goes on.
    """

    def __init__(self, presenter: Any, *, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        if interval <= 0:
            raise ValueError("interval must be a positive number of seconds")
        self.presenter = presenter
        self.interval = interval
        self._lock = threading.RLock()  # polls and the presenter's clicks update the same widgets
        self._stop = threading.Event()
        self._snapshot: dict[str, Any] | None = None
        self._updated_at: float | None = None
        self._quiet = False  # True while refresh itself sets the pickers: not the presenter's choice
        self._armed: str | None = None  # the room ARN the close button waits to close on a second click

        self.room_picker = ipywidgets.Dropdown(description="Room", options=())
        self.connection = _html("ivs-dash-connection")
        self.invite = _html("ivs-dash-invite")
        self.totals = _html("ivs-dash-totals")
        self.rate_chart = _html("ivs-dash-rate")
        self.users = _html("ivs-dash-users")
        self.errors = _html("ivs-dash-errors")
        self.event_name = ipywidgets.Text(placeholder="event name, e.g. poll_opened")
        self.event_attributes = ipywidgets.Textarea(placeholder="attributes, one key=value a line (optional)")
        self.send_button = ipywidgets.Button(description="Send event", icon="paper-plane")
        self.user_picker = ipywidgets.Dropdown(options=())
        self.reason = ipywidgets.Text(placeholder="reason (optional)")
        self.disconnect_button = ipywidgets.Button(description="Disconnect user", icon="user-times")
        self.close_button = ipywidgets.Button(description=CLOSE_LABEL, icon="lock")
        self.status = _html("ivs-dash-status")

        self.room_picker.observe(self._on_room_picked, "value")
        self.send_button.on_click(lambda _: self.send_event())
        self.disconnect_button.on_click(lambda _: self.disconnect_user())
        self.close_button.on_click(lambda _: self.close_room())
        super().__init__(self._layout())
        self.add_class("ivs-dashboard")

        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="ivs-dashboard", daemon=True)
        self._thread.start()

    # -- polling -----------------------------------------------------------------------------
    @property
    def polling(self) -> bool:
        """Whether the polling thread still runs (until ``close()``)."""
        return self._thread.is_alive()

    def refresh(self) -> None:
        """Poll the sandbox once now and show its answer, or why there is none (never raises)."""
        with self._lock:
            if self._stop.is_set():
                return
            try:
                self._snapshot = self.presenter.activity()
                self._render()
            except Exception as error:  # the sandbox stopped, the network dropped: say so, keep polling
                log.debug("activity poll failed", exc_info=True)
                since = f" (last update {_clock(self._updated_at)})" if self._updated_at else ""
                self.connection.value = _line("error", f"Cannot read the workshop's activity{since}: "
                                                       f"{_reason(error)}")
                return
            self._updated_at = time.time()
            self.connection.value = _line("ok", f"Updated {_clock(self._updated_at)}")

    def end(self) -> None:
        """Stop polling but keep the dashboard on the page as it last was, its actions disabled."""
        self._stop_polling()
        since = f" (last update {_clock(self._updated_at)})" if self._updated_at else ""
        self.connection.value = _line("muted", f"Dashboard stopped{since}")
        for widget in (self.room_picker, self.event_name, self.event_attributes, self.send_button,
                       self.user_picker, self.reason, self.disconnect_button, self.close_button):
            widget.disabled = True

    def close(self) -> None:
        """Stop polling and close every widget of the dashboard."""
        self._stop_polling()
        for child in self._widgets():
            child.close()
        super().close()

    def __repr__(self) -> str:
        polling = "stopped" if self._stop.is_set() else f"every {self.interval:g} s"
        return f"PresenterDashboard({self.presenter.url}, {polling})"

    def _stop_polling(self) -> None:
        self._stop.set()
        with self._lock:  # an in-flight poll finishes before the widgets change
            pass
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    # -- actions -----------------------------------------------------------------------------
    def send_event(self) -> None:
        """Send the typed event (name and key=value attribute lines) to everyone in the room."""
        room, name = self._room(), self.event_name.value.strip()
        if room is None or not name:
            self._say("error", "Pick a room and type an event name first.")
            return
        try:
            attributes = parse_attributes(self.event_attributes.value)
        except ValueError as error:
            self._say("error", f"Event not sent: {error}")
            return
        request: dict[str, Any] = {"roomIdentifier": room["roomArn"], "eventName": name}
        if attributes:
            request["attributes"] = attributes
        self._act(lambda: self.presenter.client.send_event(**request), f"Could not send event “{name}”",
                  f"Sent event “{name}” to {_room_name(room)}.")

    def disconnect_user(self) -> None:
        """Disconnect the picked user (every connection of theirs) from the room."""
        room, user_id = self._room(), self.user_picker.value
        if room is None or user_id is None:
            self._say("error", "Pick a room and a connected user first.")
            return
        who = self.user_picker.label or user_id
        request = {"roomIdentifier": room["roomArn"], "userId": user_id}
        if self.reason.value.strip():
            request["reason"] = self.reason.value.strip()
        self._act(lambda: self.presenter.client.disconnect_user(**request), f"Could not disconnect {who}",
                  f"Disconnected {who} from {_room_name(room)}.")

    def close_room(self) -> None:
        """First click arms, second click closes every open invite of the room and disconnects everyone."""
        room = self._room()
        codes = [invite["code"] for invite in self._invites(room) if invite["open"]] if room else []
        if room is None or not codes:
            self._say("error", "This room has no open invite to close.")
            return
        if self._armed != room["roomArn"]:
            self._arm(room["roomArn"])
            self._say("warn", f"Click “Close room” again to close {', '.join(codes)}: attendees can no longer "
                              f"join {_room_name(room)}, and everyone in it is disconnected.")
            return
        self._arm(None)
        self._act(lambda: [self.presenter.close_room(code) for code in codes], f"Could not close {', '.join(codes)}",
                  f"Closed {', '.join(codes)}: {_room_name(room)} takes no new attendees, "
                  "and everyone in it was disconnected.")

    def _act(self, action: Callable[[], object], failed: str, done: str) -> None:
        """Run one of the presenter's actions and say in the status line how it went; never raises."""
        try:
            action()
        except Exception as error:
            self._say("error", f"{failed}: {_reason(error)}")
            return
        self._say("ok", done)
        self.refresh()

    # -- rendering ---------------------------------------------------------------------------
    def _render(self) -> None:
        snapshot = self._snapshot or {"rooms": [], "invites": []}
        rooms = snapshot["rooms"]
        options = tuple((self._room_label(room), room["roomArn"]) for room in rooms)
        arns = [arn for _, arn in options]
        chosen = self.room_picker.value if self.room_picker.value in arns else default_room(snapshot)
        with self._quietly():
            if options != self.room_picker.options:
                self.room_picker.options = options
            self.room_picker.value = chosen
        self._render_room()

    def _render_room(self) -> None:
        room = self._room()
        if room is None:
            for widget in (self.invite, self.totals, self.rate_chart):
                widget.value = ""
            self.users.value = _line("muted", "No rooms yet: presenter.client.create_room(), then "
                                              "presenter.open_room(room_arn).")
            self.errors.value = errors_table(self._errors(None))
            self._set_users([])
            self._arm(None)
            self.close_button.disabled = True
            return
        self.invite.value = invites_html(self._invites(room))
        self.totals.value = totals_html(room)
        self.rate_chart.value = rate_html(room["messageRate"], room["maximumMessageRatePerSecond"])
        self.users.value = users_table(room["users"])
        self.errors.value = errors_table(self._errors(room["roomArn"]))
        self._set_users(room["users"])
        closable = any(invite["open"] for invite in self._invites(room))
        if not closable:
            self._arm(None)
        self.close_button.disabled = not closable

    def _set_users(self, users: list[dict[str, Any]]) -> None:
        options = tuple((_who(user), user["userId"]) for user in users)
        kept = self.user_picker.value if self.user_picker.value in {uid for _, uid in options} else None
        if options != self.user_picker.options:
            self.user_picker.options = options
        self.user_picker.value = kept if kept is not None else (options[0][1] if options else None)
        self.disconnect_button.disabled = not options

    def _on_room_picked(self, change: dict[str, Any]) -> None:
        with self._lock:  # a pick from the browser waits for a poll in progress, then is told apart from it
            if self._quiet:
                return
            self._arm(None)
            self._render_room()

    def _arm(self, room_arn: str | None) -> None:
        self._armed = room_arn
        self.close_button.description = "Click again to close" if room_arn else CLOSE_LABEL
        self.close_button.button_style = "danger" if room_arn else ""

    def _say(self, tone: str, text: str) -> None:
        self.status.value = _line(tone, f"{_clock(time.time())} {text}")

    @contextlib.contextmanager
    def _quietly(self) -> Iterator[None]:
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    # -- the snapshot --------------------------------------------------------------------------
    def _room(self) -> dict[str, Any] | None:
        rooms = (self._snapshot or {}).get("rooms", [])
        return next((room for room in rooms if room["roomArn"] == self.room_picker.value), None)

    def _invites(self, room: dict[str, Any]) -> list[dict[str, Any]]:
        invites = (self._snapshot or {}).get("invites", [])
        return sorted((invite for invite in invites if invite["roomArn"] == room["roomArn"]),
                      key=lambda invite: invite["createTime"], reverse=True)

    def _errors(self, room_arn: str | None) -> list[dict[str, Any]]:
        """The room's denials and errors, and those that belong to no room (refused joins), newest first."""
        errors = (self._snapshot or {}).get("recentErrors", [])
        return [error for error in reversed(errors) if error["room_arn"] in ("", room_arn)][:ERRORS_SHOWN]

    def _room_label(self, room: dict[str, Any]) -> str:
        codes = [f"{invite['code']}{'' if invite['open'] else ' closed'}" for invite in self._invites(room)]
        return f"{_room_name(room)}{f' · {codes[0]}' if codes else ''}"

    # -- layout ------------------------------------------------------------------------------
    def _layout(self) -> list[ipywidgets.Widget]:
        style = ipywidgets.HTML(f"<style>{CSS}</style>")  # the package's own CSS, not chat input
        header = _box(ipywidgets.HBox, "ivs-dash-header", [_html("ivs-dash-title", "Workshop dashboard"),
                                                           self.room_picker, self.connection])
        overview = _box(ipywidgets.VBox, "ivs-dash-column", [self.invite, self.totals, self.rate_chart])
        people = _box(ipywidgets.VBox, "ivs-dash-column", [_html("ivs-dash-heading", "Connected users"), self.users])
        send = _box(ipywidgets.VBox, "ivs-dash-action", [_html("ivs-dash-heading", "Send an event"),
                                                         self.event_name, self.event_attributes, self.send_button])
        kick = _box(ipywidgets.VBox, "ivs-dash-action", [_html("ivs-dash-heading", "Disconnect a user"),
                                                         self.user_picker, self.reason, self.disconnect_button])
        close = _box(ipywidgets.VBox, "ivs-dash-action", [_html("ivs-dash-heading", "End the workshop"),
                                                          self.close_button])
        return [style, header, _box(ipywidgets.HBox, "ivs-dash-row", [overview, people]),
                _html("ivs-dash-heading", "Recent denials and errors"), self.errors,
                _box(ipywidgets.HBox, "ivs-dash-row", [send, kick, close]), self.status]

    def _widgets(self) -> Iterator[ipywidgets.Widget]:
        """Every widget inside the dashboard, innermost first."""
        def walk(widget: ipywidgets.Widget) -> Iterator[ipywidgets.Widget]:
            for child in getattr(widget, "children", ()):
                yield from walk(child)
            yield widget
        for child in self.children:
            yield from walk(child)


# -- pure rendering: snapshot pieces → escaped HTML ------------------------------------------------
def default_room(snapshot: dict[str, Any]) -> str | None:
    """The room of the newest open invite; else of the newest invite; else the first room."""
    arns = {room["roomArn"] for room in snapshot["rooms"]}
    invites = sorted((invite for invite in snapshot["invites"] if invite["roomArn"] in arns),
                     key=lambda invite: (invite["open"], invite["createTime"]), reverse=True)
    if invites:
        return invites[0]["roomArn"]
    return snapshot["rooms"][0]["roomArn"] if snapshot["rooms"] else None


def parse_attributes(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines skipped) into an attribute map; ValueError names a bad line."""
    attributes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"line {number} is not key=value: {line.strip()}")
        attributes[key.strip()] = value.strip()
    return attributes


def invites_html(invites: list[dict[str, Any]]) -> str:
    rows = [f"<tr><td class='ivs-dash-code'>{escape(invite['code'])}</td>"
            f"<td class='ivs-dash-{'open' if invite['open'] else 'closed'}'>{'open' if invite['open'] else 'closed'}</td>"
            f"<td>{escape(', '.join(invite['capabilities']))}</td>"
            f"<td>{int(invite['tokensMinted'])} / {int(invite['maxTokens'])} tokens</td></tr>" for invite in invites]
    return _table(("Room code", "Invite", "Capabilities", "Tokens minted"), rows,
                  "Not open to attendees: presenter.open_room(room_arn) gives a room code.")


def totals_html(room: dict[str, Any]) -> str:
    figures = [(len(room["users"]), "user"), (room["connections"], "connection"),
               (room["messages"], "message"), (room["errors"], "denial")]
    return "<div class='ivs-dash-figures'>" + "".join(
        f"<span><b>{int(value)}</b> {noun}{'' if value == 1 else 's'}</span>" for value, noun in figures) + "</div>"


def rate_html(rate: list[int], limit: int) -> str:
    """Messages per second, oldest first, as bars against the room's limit (a dashed line)."""
    rate, limit = [int(count) for count in rate], int(limit)  # the SVG is built from numbers only
    peak, step = max(rate, default=0), BAR_WIDTH + BAR_GAP
    top = max(peak, limit, 1) * 1.15

    def y(value: int) -> float:
        return CHART_HEIGHT - CHART_HEIGHT * value / top

    bars = "".join(
        f"<rect class='ivs-dash-bar{' ivs-dash-bar-limit' if count >= limit else ''}' x='{n * step}'"
        f" y='{y(count):.1f}' width='{BAR_WIDTH}' height='{max(CHART_HEIGHT - y(count), 1.5):.1f}'"
        f" data-count='{count}'><title>{count} msg/s, {len(rate) - 1 - n} s ago</title></rect>"
        for n, count in enumerate(rate) if count)
    limit_line = (f"<line class='ivs-dash-limit' x1='0' x2='{len(rate) * step}' y1='{y(limit):.1f}' "
                  f"y2='{y(limit):.1f}'><title>limit {limit} msg/s</title></line>")
    svg = (f"<svg class='ivs-dash-chart' viewBox='0 0 {len(rate) * step} {CHART_HEIGHT}' preserveAspectRatio='none' "
           f"role='img' aria-label='messages per second, last {len(rate)} seconds'>{bars}{limit_line}</svg>")
    caption = (f"<div class='ivs-dash-caption'>now <b>{rate[-1] if rate else 0}</b> msg/s · peak <b>{peak}</b> · "
               f"<b>{sum(rate)}</b> in the last {len(rate)} s · limit "
               f"<span class='ivs-dash-limit-key'>{limit}</span> msg/s</div>")
    return f"<div class='ivs-dash-heading'>Messages per second</div>{svg}{caption}"


def users_table(users: list[dict[str, Any]]) -> str:
    rows = [f"<tr><td class='ivs-dash-name'>{escape(user['displayName'] or '—')}</td>"
            f"<td class='ivs-dash-user-id'>{escape(user['userId'])}</td>"
            f"<td class='ivs-dash-number'>{int(user['connections'])}</td></tr>" for user in users]
    return _table(("Name", "User id", "Connections"), rows, "Nobody is connected.")


def errors_table(errors: list[dict[str, Any]]) -> str:
    rows = [f"<tr><td>{_clock(error['time'])}</td><td>{escape(KIND_WORDS.get(error['kind'], error['kind']))}</td>"
            f"<td class='ivs-dash-number'>{int(error['code'])} {escape(ERROR_WORDS.get(error['code'], ''))}</td>"
            f"<td class='ivs-dash-message'>{escape(error['message'])}</td>"
            f"<td class='ivs-dash-user-id'>{escape(error['user_id'] or '—')}</td></tr>" for error in errors]
    return _table(("Time", "Kind", "Code", "Message", "User"), rows, "No denials or errors.")


# -- small helpers ---------------------------------------------------------------------------------
def _table(headings: tuple[str, ...], rows: list[str], empty: str) -> str:
    """A dashboard table around ``rows`` (already escaped ``<tr>`` markup), or ``empty`` in muted words
    when there are none; headings are our own words."""
    if not rows:
        return _line("muted", empty)
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    return f"<table class='ivs-dash-table'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html(css_class: str, text: str = "") -> ipywidgets.HTML:
    widget = ipywidgets.HTML(escape(text))
    widget.add_class(css_class)
    return widget


def _box(kind: type[ipywidgets.Box], css_class: str, children: list[ipywidgets.Widget]) -> ipywidgets.Box:
    box = kind(children)
    box.add_class(css_class)
    return box


def _line(tone: str, text: str) -> str:
    return f"<span class='ivs-dash-{tone}'>{escape(text)}</span>"


def _clock(seconds: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def _room_name(room: dict[str, Any]) -> str:
    return room["name"] or room["roomArn"].rsplit("/", 1)[-1]


def _who(user: dict[str, Any]) -> str:
    return f"{user['displayName']} ({user['userId']})" if user["displayName"] else user["userId"]


def _reason(error: Exception) -> str:
    """An error in words: the service's code and message, not a traceback."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}"
    return str(error) or type(error).__name__
