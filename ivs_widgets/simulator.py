"""An audience for a chat room: bots that post seeded chatter at a steady rate, and count what happened.

Notebook 07 needs a few hundred believable messages in a few seconds to have logs worth studying,
and a load test needs traffic the room actually accepts. ``AudienceSimulator`` connects N bots
(one ``ChatRoom`` each, all on one event loop on its own thread, tokens from
``Backend.token_provider``), sends a script that a seed fixes (who says what, some links, some
messages with a word for a review handler to deny) and waits for every answer: the echo of a
delivered message, or the ERROR that refused it.

Pacing. A room accepts ``maximumMessageRatePerSecond`` messages in any one-second window, counted
by the service when each message arrives; everyone in the room shares that window. Message *k* is
sent no earlier than its slot at the chosen rate, and never before one second has passed since the
answer to message *k - limit* came back. The service counted *k - limit* before answering it and
counts *k* only after it is sent, so *k - limit* has left the window by then, whatever the network
delay: the simulator alone never gets a 429. Other clients in the room use the same window, so a
429 can still happen; it is counted, never raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
import string
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ivs_widgets.chat.room import ChatError, ChatRoom
from ivs_widgets.loop_thread import LoopThread

if TYPE_CHECKING:
    from ivs_widgets.backend import Backend

#: The outcome of one message: the service delivered it, its review handler denied it (406), the room's
#: rate limit refused it (429), or anything else went wrong (another ERROR, no answer in time, no connection).
DELIVERED, DENIED, RATE_LIMITED, ERROR = "delivered", "denied", "rate_limited", "error"
DENIED_CODE, RATE_LIMITED_CODE = 406, 429

#: Bot names; more bots than names get numbered names (``ada2``).
NAMES = ("ada", "ben", "cleo", "dev", "eve", "finn", "gia", "hugo", "isla", "jon", "kai", "lena")
CHATTER = (
    "hi everyone!",
    "hello from {place} 👋",
    "first time here, this is great",
    "lol",
    "GG",
    "that was so close!",
    "what game is this?",
    "how long have you been streaming today?",
    "the audio is a little quiet on my end",
    "nice play!!",
    "let's gooo",
    "who else is watching from {place}?",
    "can you show the settings again?",
    "I have been waiting all week for this stream",
    "haha",
    "{score}/10 would watch again",
    "brb, getting snacks",
    "back!",
    "which keyboard is that?",
    "this music is a vibe",
)
LINKS = (
    "clip of that: https://clips.example.com/{code}",
    "my fan art: https://art.example.com/{code}",
    "https://clips.example.com/{code} 😂",
)
FLAGGED = (
    "{word}: the boss comes back in the last level",
    "{word} alert, the hero wins in the end",
    "big {word} - the cat was the villain all along",
)
PLACES = ("Lisbon", "Osaka", "Lagos", "Lima", "Oslo", "Pune", "Quito", "Seoul")

ProgressKind = Literal["auto", "widget", "text"]


@dataclass(frozen=True)
class ScriptedMessage:
    """One line of the script: who sends what, in which position."""

    index: int
    user_id: str
    display_name: str
    content: str


@dataclass(frozen=True)
class SimulatedMessage(ScriptedMessage):
    """A scripted message after the service answered it."""

    outcome: str = ERROR
    error_code: int | None = None
    message_id: str | None = None  # the id the service gave a delivered message


@dataclass(frozen=True)
class AudienceSummary:
    """What the room made of the script: ``sent == delivered + denied + rate_limited + errors``."""

    sent: int
    delivered: int
    denied: int
    rate_limited: int
    errors: int
    #: Every message sent, in script order.
    results: tuple[SimulatedMessage, ...] = field(repr=False)
    #: From the first send to the last answer (left out of the repr: it differs on every run).
    seconds: float = field(repr=False)

    def with_outcome(self, outcome: str) -> list[SimulatedMessage]:
        return [result for result in self.results if result.outcome == outcome]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per message sent, e.g. for ``pandas.DataFrame``."""
        return [asdict(result) for result in self.results]


def display_name(user_id: str) -> str:
    """The name a bot's token carries as its ``displayName`` attribute."""
    return user_id.capitalize()


def bot_names(count: int) -> list[str]:
    """``count`` distinct user ids: the names in order, then numbered (``ada2``)."""
    return [NAMES[i % len(NAMES)] + (str(i // len(NAMES) + 1) if i >= len(NAMES) else "") for i in range(count)]


def audience_script(count: int, users: list[str], seed: int, *, flagged_word: str = "spoiler",
                    flagged_share: float = 0.05, link_share: float = 0.1,
                    max_length: int | None = None) -> list[ScriptedMessage]:
    """``count`` messages that depend only on the arguments. Earlier users talk more (weights 1, 1/2,
    1/3, …), so a few chatters stand out; ``flagged_share`` of the messages contain ``flagged_word``
    and ``link_share`` of them a link."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(users))]
    script = []
    for index in range(count):
        user = rng.choices(users, weights)[0]
        roll = rng.random()
        if roll < flagged_share:
            template = rng.choice(FLAGGED)
        elif roll < flagged_share + link_share:
            template = rng.choice(LINKS)
        else:
            template = rng.choice(CHATTER)
        content = template.format(word=flagged_word, place=rng.choice(PLACES), score=rng.randint(7, 10),
                                  code="".join(rng.choices(string.ascii_lowercase + string.digits, k=8)))
        script.append(ScriptedMessage(index, user, display_name(user), content[:max_length]))
    return script


class AudienceSimulator:
    """``bots`` viewers posting ``messages`` messages (or for ``seconds``) at ``rate`` messages per second.

    ``rate`` defaults to the room's ``maximumMessageRatePerSecond`` and may not exceed it. ``run()``
    blocks until every message sent has its answer and returns an :class:`AudienceSummary`;
    ``start()`` / ``wait()`` split that in two, and ``stop()`` (from any thread) ends it early.
    ``progress`` shows a bar: an ipywidgets one in a notebook, text on stderr elsewhere, or none.
    """

    def __init__(self, backend: Backend, room_arn: str, *, bots: int = 8, messages: int | None = None,
                 seconds: float | None = None, rate: float | None = None, seed: int = 0,
                 flagged_word: str = "spoiler", flagged_share: float = 0.05, link_share: float = 0.1,
                 progress: ProgressKind | None = "auto", request_timeout: float = 10.0) -> None:
        if messages is None and seconds is None:
            raise ValueError("say how long to chat: messages=..., seconds=... or both")
        if bots < 1:
            raise ValueError("an audience needs at least one bot")
        room = backend.client.get_room(identifier=room_arn)
        #: The room's limit: no one-second window ever holds more of the simulator's messages.
        self.limit: int = room["maximumMessageRatePerSecond"]
        self.rate = float(rate if rate is not None else self.limit)
        if not 0 < self.rate <= self.limit:
            raise ValueError(f"rate must be above 0 and at most the room's {self.limit} messages per second")
        self.seconds = seconds
        # At most one message per slot of 1/rate seconds fits in ``seconds``.
        planned = min(n for n in (messages, None if seconds is None else math.ceil(seconds * self.rate))
                      if n is not None)
        self.users = bot_names(bots)
        #: Everything the bots will say, fixed by the seed.
        self.script = audience_script(planned, self.users, seed, flagged_word=flagged_word,
                                      flagged_share=flagged_share, link_share=link_share,
                                      max_length=room["maximumMessageLength"])
        self._backend = backend
        self._room_arn = room_arn
        self._request_timeout = request_timeout
        self._progress_kind = progress
        #: The bar, once started (``progress.value`` of ``progress.total`` answered).
        self.progress: Progress | None = None
        self._stopping = threading.Event()
        self._thread = LoopThread("ivs-audience")
        self._wake: asyncio.Event | None = None
        self._done: concurrent.futures.Future[AudienceSummary] | None = None

    # -- control, from the caller's thread -------------------------------------------------
    def run(self) -> AudienceSummary:
        """Start, and block until every message has its answer; Ctrl-C stops the bots first."""
        self.start()
        try:
            return self.wait()
        except KeyboardInterrupt:
            self.stop()
            self.wait()
            raise

    def start(self) -> AudienceSimulator:
        """Show the progress bar and start the bots on their own thread; returns at once."""
        if self._done is not None:
            raise RuntimeError("an AudienceSimulator runs once; make a new one to chat again")
        self.progress = make_progress(self._progress_kind, len(self.script))
        self._done = self._thread.start().submit(self._main(), detached=True)
        self._done.add_done_callback(lambda _: self._thread.stop())
        return self

    def wait(self, timeout: float | None = None) -> AudienceSummary:
        """The summary once the run is over (raises what ended it, e.g. a bot that could not connect)."""
        if self._done is None:
            raise RuntimeError("start() first")
        return self._done.result(timeout)

    def stop(self) -> None:
        """Send nothing more; messages already sent still get their answers. Safe from any thread."""
        self._stopping.set()
        if self._wake is not None:
            self._thread.call_soon(self._wake.set)

    # -- the bots' thread --------------------------------------------------------------------
    async def _main(self) -> AudienceSummary:
        self._wake = asyncio.Event()
        if self._stopping.is_set():
            self._wake.set()
        rooms = {user: ChatRoom(self._backend.messaging_url,
                                self._backend.token_provider(self._room_arn, user, ["SEND_MESSAGE"],
                                                             {"displayName": display_name(user)}),
                                request_timeout=self._request_timeout, ssl=self._backend.ssl)
                 for user in self.users}
        try:
            await asyncio.gather(*(room.connect() for room in rooms.values()))
            return await self._send_script(rooms)
        finally:
            await asyncio.gather(*(room.disconnect() for room in rooms.values()), return_exceptions=True)

    async def _send_script(self, rooms: dict[str, ChatRoom]) -> AudienceSummary:
        loop = asyncio.get_running_loop()
        answered: list[asyncio.Future[float]] = []  # loop time at which each message got its answer
        sends: list[asyncio.Task[SimulatedMessage]] = []
        start = loop.time()
        deadline = start + self.seconds if self.seconds is not None else math.inf
        for scripted in self.script:
            k = scripted.index
            slot = start + k / self.rate
            if k >= self.limit:
                slot = max(slot, await answered[k - self.limit] + 1.0)
            if slot >= deadline or await self._stopped_before(slot):
                break
            answered.append(loop.create_future())
            sends.append(asyncio.ensure_future(self._send(rooms[scripted.user_id], scripted, answered[k])))
        results = tuple(await asyncio.gather(*sends))
        counts = {outcome: sum(r.outcome == outcome for r in results)
                  for outcome in (DELIVERED, DENIED, RATE_LIMITED, ERROR)}
        summary = AudienceSummary(len(results), counts[DELIVERED], counts[DENIED], counts[RATE_LIMITED],
                                  counts[ERROR], results, loop.time() - start)
        assert self.progress is not None
        self.progress.finish(stopped=self._stopping.is_set())
        return summary

    async def _stopped_before(self, when: float) -> bool:
        """Wait until loop time ``when`` (the pacing); True at once if stop() is called."""
        assert self._wake is not None
        delay = when - asyncio.get_running_loop().time()
        if delay > 0 and not self._wake.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
        return self._stopping.is_set()

    async def _send(self, room: ChatRoom, scripted: ScriptedMessage,
                    answered: asyncio.Future[float]) -> SimulatedMessage:
        try:
            echo = await room.send_message(scripted.content)
            result = SimulatedMessage(**asdict(scripted), outcome=DELIVERED, message_id=echo.id)
        except ChatError as error:
            outcome = {DENIED_CODE: DENIED, RATE_LIMITED_CODE: RATE_LIMITED}.get(error.code, ERROR)
            result = SimulatedMessage(**asdict(scripted), outcome=outcome, error_code=error.code)
        finally:
            answered.set_result(asyncio.get_running_loop().time())
        assert self.progress is not None
        self.progress.advance(result)
        return result


# -- progress ------------------------------------------------------------------------------
class Progress:
    """Counts answered messages; subclasses show the count. Called on the bots' thread."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.value = 0
        self.counts = {DELIVERED: 0, DENIED: 0, RATE_LIMITED: 0, ERROR: 0}

    def advance(self, result: SimulatedMessage) -> None:
        before = self._percent()
        self.value += 1
        self.counts[result.outcome] += 1
        if self._percent() != before:
            self.show(self.describe())

    def finish(self, *, stopped: bool) -> None:
        """The last update: a run cut short by its time limit counts as complete, a stopped one does not."""
        if not stopped:
            self.total = self.value
        self.show(self.describe() + (" · stopped" if stopped else " · done"))

    def describe(self) -> str:
        refused = ", ".join(f"{self.counts[k]} {k.replace('_', ' ')}" for k in (DENIED, RATE_LIMITED, ERROR)
                            if self.counts[k])
        return f"{self.value}/{self.total} messages" + (f" ({refused})" if refused else "")

    def show(self, text: str) -> None:
        """Nothing to show: the counts are still kept."""

    def _percent(self) -> int:
        return 100 * self.value // self.total if self.total else 100


class TextProgress(Progress):
    """A line on ``stream`` at every tenth of the way, for terminals and logs."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        super().__init__(total)
        self.stream = stream or sys.stderr
        self._last_tenth = 0
        self._print(self.describe())

    def show(self, text: str) -> None:
        tenth = self._percent() // 10
        final = text.endswith(("done", "stopped"))
        if final or (tenth != self._last_tenth and self.value < self.total):
            self._last_tenth = tenth
            self._print(text)

    def _print(self, text: str) -> None:
        print(f"audience: {text}", file=self.stream, flush=True)


class WidgetProgress(Progress):
    """An ipywidgets bar and label, displayed in the cell that started the run."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        import ipywidgets
        from IPython.display import display

        self.bar = ipywidgets.IntProgress(value=0, min=0, max=max(total, 1), description="audience")
        self.label = ipywidgets.Label(self.describe())
        self.widget = ipywidgets.HBox([self.bar, self.label])
        display(self.widget)

    def show(self, text: str) -> None:  # synced traits are safe to set from the bots' thread
        self.bar.max = max(self.total, 1)
        self.bar.value = self.value
        self.label.value = text


def make_progress(kind: ProgressKind | None, total: int) -> Progress:
    if kind is None:
        return Progress(total)
    if kind == "widget" or (kind == "auto" and _in_kernel()):
        return WidgetProgress(total)
    if kind in ("auto", "text"):
        return TextProgress(total)
    raise ValueError(f"progress must be 'auto', 'widget', 'text' or None, not {kind!r}")


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can show), not in a plain Python or IPython terminal."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return getattr(shell, "kernel", None) is not None
