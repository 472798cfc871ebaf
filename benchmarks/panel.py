"""ChatPanel benchmark: a real JupyterLab in headless Chromium, fed by a sandbox in this process.

Two questions, each answered against a baseline from the same run:

1. How long does the panel take to show 1,000 messages sent at 100 msg/s? Baseline: how long the
   same messages take to reach a plain Python client (a BackgroundChatRoom in this process). The
   page records the moment the last message's row is in the DOM (a MutationObserver, Date.now())
   and counts the tab's long tasks (> 50 ms) meanwhile.
2. Does the tab's memory stay bounded? The JS heap (CDP ``Runtime.getHeapUsage`` after a forced
   GC) before any message, after 1,000 and after 10,000 messages; the history cap keeps the rows.

The service caps a room at 100 msg/s; a sender paced at exactly that rate can still trip a sliding
one-second window through scheduling jitter, so the benchmark lifts the sandbox room's cap (in its
state, below the API) and paces the sender itself: 100 msg/s for question 1, faster for the
10,000 of question 2 (memory depends on the count, not the rate).

    python benchmarks/panel.py                  # 1,000 at 100 msg/s, then up to 10,000 at 500 msg/s
    python benchmarks/panel.py --heap-rate 100  # the whole 10,000 at the service's real rate
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import sync_playwright
from websockets.sync.client import connect

from ivs_widgets.chat import BackgroundChatRoom, ChatToken
from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.core.state import ROOM
from ivs_widgets.widgets.chat import DEFAULT_HISTORY_LIMIT

#: Same browser and flags as tests/browser/conftest.py (Debian's Chromium, no ``playwright install``).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 120_000

NOTEBOOK = """\
import boto3
from ivs_widgets.chat import ChatToken
from ivs_widgets.widgets import ChatPanel

ivschat = boto3.client("ivschat", endpoint_url={control!r}, region_name={region!r},
                       aws_access_key_id={key!r}, aws_secret_access_key={secret!r})
panel = ChatPanel({messaging!r}, lambda: ChatToken.from_response(ivschat.create_chat_token(
    roomIdentifier={room!r}, userId="viewer", capabilities=["SEND_MESSAGE"])), title="Benchmark")
panel
"""

#: Resolves with Date.now() once the last row's text is ``text`` (checked per DOM batch, not polled).
SHOWN = """text => new Promise(resolve => {
  const list = document.querySelector('.ivs-chat-list');
  const done = () => list.lastElementChild?.querySelector('.ivs-chat-text')?.textContent === text;
  if (done()) return resolve(Date.now());
  new MutationObserver((_, observer) => {
    if (done()) { observer.disconnect(); resolve(Date.now()); }
  }).observe(list, {childList: true});
})"""
#: Resolves once the tab has been idle for about a second (20 idle periods of the full 50 ms).
SETTLED = """() => new Promise(resolve => {
  let calm = 0;
  const tick = deadline => {
    calm = deadline.timeRemaining() >= 49 ? calm + 1 : 0;
    if (calm >= 20) resolve(); else requestIdleCallback(tick);
  };
  requestIdleCallback(tick);
})"""
WATCH_LONG_TASKS = """() => {
  window.__longTasks = [];
  new PerformanceObserver(list => window.__longTasks.push(...list.getEntries().map(e => e.duration)))
    .observe({type: 'longtask'});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=100.0, help="msg/s for the timed run")
    parser.add_argument("--heap-messages", type=int, default=10_000, help="total messages before the last heap")
    parser.add_argument("--heap-rate", type=float, default=500.0)
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")

    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as scratch, jupyterlab(Path(scratch)) as (url, root):
        ivschat = sandbox.client()
        room = ivschat.create_room(name="benchmark", maximumMessageRatePerSecond=100)
        lift_rate_limit(sandbox, room["arn"])
        write_notebook(root / "bench.ipynb", sandbox, room["arn"])
        listener = Listener(sandbox, ivschat, room["arn"])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            open_and_run(page, f"{url}/lab/tree/bench.ipynb?reset")
            page.evaluate(SETTLED)  # JupyterLab keeps loading for a while after the panel connects
            cdp = page.context.new_cdp_session(page)
            heap = [("before any message", heap_mb(cdp))]

            page.evaluate(WATCH_LONG_TASKS)
            sender = send_in_background(sandbox, ivschat, room["arn"], range(args.messages), args.rate)
            shown_at = page.evaluate(SHOWN, f"bench {args.messages - 1}") / 1000
            sender.join()
            python_at = listener.wait_for(f"bench {args.messages - 1}")
            long_tasks = page.evaluate("() => window.__longTasks")
            heap.append((f"after {args.messages:,} messages", heap_mb(cdp)))

            rest = range(args.messages, args.heap_messages)
            send_in_background(sandbox, ivschat, room["arn"], rest, args.heap_rate).join()
            page.evaluate(SHOWN, f"bench {args.heap_messages - 1}")
            heap.append((f"after {args.heap_messages:,} messages", heap_mb(cdp)))
            rows = page.evaluate("() => document.querySelectorAll('.ivs-chat-row').length")
            browser.close()
        listener.close()

    started = sender.started
    python_s, panel_s = python_at - started, shown_at - started
    print(f"ChatPanel benchmark — JupyterLab + headless Chromium, history_limit={DEFAULT_HISTORY_LIMIT}")
    print(f"\n{args.messages:,} messages sent at {args.rate:g} msg/s (sending took {sender.took:.2f} s):")
    print(f"  plain Python client had them all after {python_s:8.2f} s   (baseline)")
    print(f"  the panel showed them all after        {panel_s:8.2f} s   "
          f"({panel_s / python_s:.3f}× baseline, last row {1000 * (shown_at - python_at):+.0f} ms after Python)")
    print(f"  long tasks in the tab meanwhile: {len(long_tasks)} ({sum(long_tasks):.0f} ms in total)")
    print("\nJS heap of the tab (after a forced GC):")
    base = heap[0][1]
    for label, size in heap:
        print(f"  {label:<28} {size:7.1f} MB   ({size / base:.2f}× before)")
    print(f"  rows in the panel's DOM at the end: {rows} (cap {DEFAULT_HISTORY_LIMIT})")


# -- the room and its two other users -----------------------------------------------------------
def lift_rate_limit(sandbox: Sandbox, room_arn: str) -> None:
    """Below the API: let the sandbox room take more than the service's 100 msg/s (see the docstring)."""
    room = sandbox.state.get(ROOM, room_arn)
    assert room is not None
    room["maximumMessageRatePerSecond"] = 1_000_000
    sandbox.state.put(ROOM, room, updated=False)


def token(ivschat: Any, room_arn: str, user_id: str) -> str:
    return ivschat.create_chat_token(roomIdentifier=room_arn, userId=user_id, capabilities=["SEND_MESSAGE"])["token"]


class Listener:
    """The baseline: a plain Python client noting when each message arrives."""

    def __init__(self, sandbox: Sandbox, ivschat: Any, room_arn: str) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = threading.Condition()
        self.chat = BackgroundChatRoom(sandbox.messaging_endpoint,
                                       lambda: ChatToken(token(ivschat, room_arn, "listener")))
        self.chat.on("message", self._arrive)
        self.chat.connect()

    def _arrive(self, message: Any) -> None:
        with self.changed:
            self.arrived[message.content] = time.time()
            self.changed.notify_all()

    def wait_for(self, content: str) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: content in self.arrived, WAIT_MS / 1000):
                raise TimeoutError(f"the Python client never got {content!r}")
            return self.arrived[content]

    def close(self) -> None:
        self.chat.close()


class Sender(threading.Thread):
    """Sends ``bench <n>`` for each n, paced to ``rate`` by an absolute schedule."""

    def __init__(self, url: str, token: str, numbers: range, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.numbers, self.rate = url, token, numbers, rate
        self.started = self.took = 0.0

    def run(self) -> None:
        # max_queue=None: this sender never reads, and must not make the server hold the room's frames.
        with connect(self.url, subprotocols=[self.token], max_queue=None) as ws:  # type: ignore[list-item]
            self.started = time.time()
            for i, n in enumerate(self.numbers):
                delay = self.started + i / self.rate - time.time()
                if delay > 0:
                    time.sleep(delay)  # pacing the load generator, not waiting for a result
                ws.send(json.dumps({"Action": "SEND_MESSAGE", "Content": f"bench {n}"}))
            self.took = time.time() - self.started


def send_in_background(sandbox: Sandbox, ivschat: Any, room_arn: str, numbers: range, rate: float) -> Sender:
    sender = Sender(sandbox.messaging_endpoint, token(ivschat, room_arn, "sender"), numbers, rate)
    sender.start()
    return sender


# -- JupyterLab and the page --------------------------------------------------------------------
def write_notebook(path: Path, sandbox: Sandbox, room_arn: str) -> None:
    source = NOTEBOOK.format(control=sandbox.control_endpoint, region=sandbox.region,
                             key=sandbox.config.access_key_id, secret=sandbox.config.secret_access_key,
                             messaging=sandbox.messaging_endpoint, room=room_arn)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@contextlib.contextmanager
def jupyterlab(scratch: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a free loopback port with no token (the recipe of tests/browser/conftest.py)."""
    root = scratch / "lab"
    root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **{f"JUPYTER_{d.upper()}_DIR": str(scratch / d) for d in ("config", "runtime", "data")}}
    with open(scratch / "lab.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--allow-root"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:  # poll: there is no event to await across processes
                try:
                    urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"JupyterLab did not start; see {log.name}")
                    time.sleep(0.2)
            yield url, root
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def open_and_run(page: Any, url: str) -> None:
    page.goto(url, timeout=WAIT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=WAIT_MS)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=WAIT_MS)  # the kernel is ready
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    page.wait_for_selector(".ivs-chat-state-connected", timeout=WAIT_MS)


def heap_mb(cdp: Any) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6


if __name__ == "__main__":
    main()
