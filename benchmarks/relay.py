"""Stream relay benchmark: the player fetching the stream itself (direct) vs through the kernel (relay).

A real JupyterLab in headless Chromium shows a LiveStreamPanel (hls.js engine) on a 720p live test
stream in 2 s segments (about 125 KB each, as a real channel's are 100–300 KB), served by this
process with the sandbox's chat. The route alternates, in the same run, for ``--seconds`` each:

- direct: the page fetches the playlist and segments from loopback itself;
- relay: the page is routed so that the stream's origin is unreachable (as on Binder or JupyterHub),
  the player falls back to its comm, and the kernel fetches.

Figures per route, with relay ÷ direct:
- live latency: what the panel reports, hls.js's distance behind the live edge as of the last
  playlist's arrival (so a later playlist is not counted: the relay's extra playlist fetch time adds
  to it);
- fetch time, request to answer, of playlists and segments: what the relay adds to each, so how
  much later a new segment reaches the player;
- kernel CPU: the notebook kernel's process (relay fetches and sends, the panels' traits);
- chat: a message sent every 0.5 s by another user, from its send to its row in the page.

Then busy cells: ``time.sleep(--busy)`` run from the page on each route, as a learner runs a cell,
with how long the video stalled, when it played again and whether the chat kept coming. A kernel
reads the page's requests only when idle, unless the front end sends widget messages to a kernel
subshell: JupyterLab 4.6 with ipykernel 7 does (its setting "Kernel Comms over subshells"), other
front ends do not. ``--comms disabled`` measures the second case in JupyterLab.

    python benchmarks/relay.py                       # 3 rounds of 30 s per route, busy cells of 10 and 30 s
    python benchmarks/relay.py --comms disabled      # widget messages wait for the idle kernel
    python benchmarks/relay.py --rounds 1 --seconds 10 --busy 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client import BlockingKernelClient
from panel import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, jupyterlab, open_and_run, token
from playwright.sync_api import sync_playwright
from websockets.sync.client import connect

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.stream.models import HlsTestStream

NOTEBOOK = """\
import boto3
from ivs_widgets.chat import ChatToken
from ivs_widgets.widgets import LiveStreamPanel

ivschat = boto3.client("ivschat", endpoint_url={control!r}, region_name={region!r},
                       aws_access_key_id={key!r}, aws_secret_access_key={secret!r})
live = LiveStreamPanel({stream!r}, messaging_url={messaging!r}, title="Benchmark",
                       token_provider=lambda: ChatToken.from_response(ivschat.create_chat_token(
                           roomIdentifier={room!r}, userId="viewer", capabilities=["SEND_MESSAGE"])))
live.player.engine = "hls.js"  # both routes on one engine: the native one cannot be relayed
live
"""
#: Run from the page, as a learner runs a cell: the page's comm messages wait behind it. (Code sent
#: by another client, like this benchmark's kernel client, does not hold them up.)
BUSY_CELL = """import time
time.sleep(globals().get("BUSY", 0))  # the benchmark sets BUSY, then runs this cell from the page
"""

#: Recorded in the page from its first script on: the stream's requests on both routes, the player's
#: status and position every 200 ms, and when each chat row appeared (all as Date.now() ms).
RECORDER = r"""
(() => {
  const bench = window.__bench = {requests: {}, answers: [], direct: [], samples: [], rows: {}};
  const decoder = new TextDecoder();
  const head = (data) => {
    if (typeof data === "string") return data.slice(0, 4096);
    const bytes = ArrayBuffer.isView(data) ? data : new Uint8Array(data);
    return decoder.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, Math.min(4096, bytes.byteLength)));
  };
  const size = (data) => typeof data === "string" ? data.length : data.byteLength;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const fetch = /"type":\s*"fetch",\s*"id":\s*"([^"]+)",\s*"url":\s*"([^"]+)"/.exec(head(data));
    if (fetch) bench.requests[fetch[1]] = {url: fetch[2], sent: Date.now()};
    if (!this.__benchListens) {
      this.__benchListens = true;
      this.addEventListener("message", (event) => {
        const answer = /"type":\s*"fetched",\s*"id":\s*"([^"]+)"/.exec(head(event.data));
        if (answer) bench.answers.push({id: answer[1], at: Date.now(), bytes: size(event.data)});
      });
    }
    return send.call(this, data);
  };
  performance.setResourceTimingBufferSize(1_000_000);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (/\.(m3u8|ts)(\?|$)/.test(entry.name)) {
        bench.direct.push({url: entry.name, sent: performance.timeOrigin + entry.startTime,
                           at: performance.timeOrigin + entry.responseEnd, bytes: entry.encodedBodySize});
      }
    }
  }).observe({type: "resource", buffered: true});
  setInterval(() => {
    const video = document.querySelector(".ivs-player video");
    if (!video) return;
    bench.samples.push({t: Date.now(), position: video.currentTime,
                        status: document.querySelector(".ivs-player-status")?.textContent ?? ""});
    for (const row of document.querySelectorAll(".ivs-chat-text")) bench.rows[row.textContent] ??= Date.now();
  }, 200);
  new MutationObserver(() => {
    for (const row of document.querySelectorAll(".ivs-chat-text")) bench.rows[row.textContent] ??= Date.now();
  }).observe(document, {childList: true, subtree: true});
})();
"""
COLLECT = "() => window.__bench"
BEHIND = re.compile(r"([\d.]+) s behind live")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="direct/relay alternations")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per route and round")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of playing before measuring")
    parser.add_argument("--busy", type=float, nargs="*", default=[10.0, 30.0], help="busy cells' lengths")
    parser.add_argument("--size", default="1280x720", help="the test stream's frame size")
    parser.add_argument("--comms", choices=["perCommTarget", "disabled"], default="perCommTarget",
                        help="JupyterLab's 'Kernel Comms over subshells' setting (its default: perCommTarget)")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    width, height = (int(n) for n in args.size.split("x"))

    with Sandbox() as sandbox, HlsTestStream(width=width, height=height, fps=30, segment_seconds=2) as stream, \
            tempfile.TemporaryDirectory() as scratch, jupyterlab(set_comms(Path(scratch), args.comms)) as (url, root):
        ivschat = sandbox.client()
        room = ivschat.create_room(name="relay-benchmark")
        write_notebook(root / "relay.ipynb", sandbox, room["arn"], stream.playback_url)
        chatter = Chatter(sandbox.messaging_endpoint, token(ivschat, room["arn"], "chatter"))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.add_init_script(RECORDER)
            open_and_run(page, f"{url}/lab/tree/relay.ipynb?reset")
            kernel = Kernel(Path(scratch) / "runtime")
            chatter.start()
            route = Route(page, kernel, f"http://127.0.0.1:{stream.port}")
            windows = []
            for _ in range(args.rounds):
                for name in ("direct", "relay"):
                    route.use(name, args.warmup)
                    windows.append(measure(kernel, name, args.seconds))
            busy = []
            for seconds in args.busy:
                for name in ("direct", "relay"):
                    route.use(name, args.warmup)
                    busy.append(busy_cell(page, kernel, name, seconds))
            data = page.evaluate(COLLECT)
            browser.close()
        chatter.stop()
        kernel.close()
    report(args, windows, busy, data, chatter.sent)


# -- what this process serves and does ----------------------------------------------------------
class Chatter(threading.Thread):
    """Another user, sending ``bench <time.time() ms>`` every half second."""

    def __init__(self, url: str, chat_token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, chat_token
        self.sent: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        with connect(self.url, subprotocols=[self.token], max_queue=None) as ws:  # type: ignore[list-item]
            while not self.stopped.wait(0.5):  # pacing the load, not waiting for a result
                now = time.time() * 1000
                ws.send(json.dumps({"Action": "SEND_MESSAGE", "Content": f"bench {now:.0f}"}))
                self.sent[f"bench {now:.0f}"] = now

    def stop(self) -> None:
        self.stopped.set()
        self.join()


class Kernel:
    """The notebook's kernel, reached beside JupyterLab: runs code in the notebook's namespace."""

    def __init__(self, runtime: Path) -> None:
        [connection] = runtime.glob("kernel-*.json")
        self.client = BlockingKernelClient(connection_file=str(connection))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.pid = int(self.evaluate("__import__('os').getpid()"))

    def evaluate(self, expression: str) -> str:
        output: list[str] = []
        self.client.execute_interactive(f"print({expression})", timeout=60, output_hook=lambda msg: output.append(
            msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        return "".join(output).strip()

    def run(self, code: str) -> None:
        reply = self.client.execute_interactive(code, timeout=600, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads

    def close(self) -> None:
        self.client.stop_channels()


class Route:
    """Switches the page between fetching the stream itself and finding its origin unreachable."""

    def __init__(self, page: Any, kernel: Kernel, origin: str) -> None:
        self.page, self.kernel, self.pattern = page, kernel, f"{origin}/**"
        self.blocked = False

    def use(self, name: str, warmup: float) -> None:
        if (name == "relay") != self.blocked:
            if self.blocked:
                self.page.unroute(self.pattern)
            else:
                self.page.route(self.pattern, lambda route: route.abort("addressunreachable"))
            self.blocked = not self.blocked
        self.kernel.run("live.player.reload()")
        self.page.wait_for_function("r => document.querySelector('.ivs-player').dataset.route === r", arg=name,
                                    timeout=WAIT_MS)
        start = self.page.eval_on_selector(".ivs-player video", "v => v.currentTime")
        self.page.wait_for_function("t => document.querySelector('.ivs-player video').currentTime > t + 1",
                                    arg=start, timeout=WAIT_MS)
        time.sleep(warmup)  # let hls.js settle at its live distance before measuring


# -- measuring ----------------------------------------------------------------------------------
@dataclass
class Window:
    """A stretch of the run on one route: measured playing, or a busy cell and until video plays again."""

    route: str
    start: float  # ms since the epoch, as the page's Date.now()
    end: float
    cpu: float = 0.0  # kernel CPU seconds meanwhile
    cell_end: float = 0.0  # a busy cell's: when it finished
    seconds: float = 0.0  # a busy cell's length

    def __contains__(self, at: float) -> bool:
        return self.start <= at < self.end


def measure(kernel: Kernel, route: str, seconds: float) -> Window:
    cpu, start = kernel.cpu_seconds(), time.time() * 1000
    time.sleep(seconds)  # the page and the kernel work meanwhile; this only marks the window
    return Window(route, start, time.time() * 1000, kernel.cpu_seconds() - cpu)


def busy_cell(page: Any, kernel: Kernel, route: str, seconds: float) -> Window:
    """Run the busy cell from the page for ``seconds``; the window ends once 2 s more video have played."""
    kernel.run(f"BUSY = {seconds}")
    cell = page.locator(".jp-CodeCell").nth(1)
    before = cell.locator(".jp-InputPrompt").text_content()
    start = time.time() * 1000
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function("([prompt, before]) => /\\[\\d+\\]/.test(prompt.textContent) && prompt.textContent !== before",
                           arg=[cell.locator(".jp-InputPrompt").element_handle(), before],
                           timeout=WAIT_MS + seconds * 1000)
    cell_end = time.time() * 1000
    position = page.eval_on_selector(".ivs-player video", "v => v.currentTime")
    page.wait_for_function("t => document.querySelector('.ivs-player video').currentTime > t + 2", arg=position,
                           timeout=WAIT_MS)
    return Window(route, start, time.time() * 1000, cell_end=cell_end, seconds=seconds)


# -- figures ------------------------------------------------------------------------------------
def stream_requests(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every stream request the page made, on either route: url, sent, at (answered), bytes (relay only)."""
    answered = {answer["id"]: answer for answer in data["answers"]}
    relayed = [{**request, "at": answered[key]["at"], "bytes": answered[key]["bytes"]}
               for key, request in data["requests"].items() if key in answered]
    return relayed + [{**request, "bytes": None} for request in data["direct"]]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def within(items: Iterable[dict[str, Any]], windows: list[Window], key: str) -> list[dict[str, Any]]:
    return [item for item in items if any(item[key] in window for window in windows)]


def stalls(samples: list[dict[str, Any]], window: Window) -> list[tuple[float, float]]:
    """(from, to) of each 200 ms sample interval in which the video advanced less than half as fast as the clock."""
    inside = [s for s in samples if s["t"] in window]
    return [(a["t"], b["t"]) for a, b in zip(inside, inside[1:])
            if b["position"] - a["position"] < 0.5 * (b["t"] - a["t"]) / 1000]


def route_figures(route: str, windows: list[Window], requests: list[dict[str, Any]], data: dict[str, Any],
                  chat: list[dict[str, float]]) -> dict[str, float]:
    mine = [window for window in windows if window.route == route]
    fetched = within(requests, mine, "at")
    segments = [r for r in fetched if r["url"].split("?")[0].endswith(".ts")]
    playlists = [r for r in fetched if r["url"].split("?")[0].endswith(".m3u8")]
    behind = [float(m[1]) for s in within(data["samples"], mine, "t") if (m := BEHIND.search(s["status"]))]
    relayed = [r["bytes"] for r in segments if r["bytes"] is not None]
    delays = [c["delay"] for c in within(chat, mine, "at")]
    return {
        "latency": statistics.median(behind) if behind else float("nan"),
        "playlist fetch": percentile([r["at"] - r["sent"] for r in playlists], 0.5),
        "playlist fetch p90": percentile([r["at"] - r["sent"] for r in playlists], 0.9),
        "segment fetch": percentile([r["at"] - r["sent"] for r in segments], 0.5),
        "segment fetch p90": percentile([r["at"] - r["sent"] for r in segments], 0.9),
        "cpu": 100 * sum(w.cpu for w in mine) / (sum(w.end - w.start for w in mine) / 1000),
        "chat p50": percentile(delays, 0.5), "chat p99": percentile(delays, 0.99),
        "stalled": sum(b - a for w in mine for a, b in stalls(data["samples"], w)) / 1000,
        "segment KB": statistics.mean(relayed) / 1000 if relayed else float("nan"),
        "relayed MB": sum(relayed) / 1e6,
    }


ROWS = [("live latency the panel reports (s)", "latency", "{:.2f}"),
        ("playlist fetch p50 (ms)", "playlist fetch", "{:.1f}"),
        ("playlist fetch p90 (ms)", "playlist fetch p90", "{:.1f}"),
        ("segment fetch p50 (ms)", "segment fetch", "{:.1f}"),
        ("segment fetch p90 (ms)", "segment fetch p90", "{:.1f}"),
        ("kernel CPU (% of one core)", "cpu", "{:.2f}"),
        ("chat send → row p50 (ms)", "chat p50", "{:.0f}"),
        ("chat send → row p99 (ms)", "chat p99", "{:.0f}"),
        ("video stalled (s)", "stalled", "{:.1f}")]


def report(args: argparse.Namespace, windows: list[Window], busy: list[Window], data: dict[str, Any],
           sent: dict[str, float]) -> None:
    requests = stream_requests(data)
    chat = [{"delay": data["rows"][text] - at, "at": at} for text, at in sent.items() if text in data["rows"]]
    figures = {route: route_figures(route, windows, requests, data, chat) for route in ("direct", "relay")}
    direct, relay = figures["direct"], figures["relay"]
    print(f"Relay benchmark — JupyterLab + headless Chromium, hls.js, {args.size} in 2 s segments, "
          f"{args.rounds} × {args.seconds:g} s per route, comms over subshells: {args.comms}")
    print(f"\n{'':40}{'direct':>9}{'relay':>9}{'relay ÷ direct':>16}")
    for label, key, form in ROWS:
        ratio = f"{relay[key] / direct[key]:.2f}×" if direct[key] else "–"
        print(f"{label:40}{form.format(direct[key]):>9}{form.format(relay[key]):>9}{ratio:>16}")
    relay_seconds = sum(w.end - w.start for w in windows if w.route == "relay") / 1000
    extra_cpu = sum(w.cpu for w in windows if w.route == "relay") - direct["cpu"] / 100 * relay_seconds
    print(f"\nrelayed: {relay['relayed MB']:.1f} MB in segments of {relay['segment KB']:.0f} KB on average; "
          f"relaying cost the kernel {1000 * extra_cpu / relay['relayed MB']:.0f} ms of CPU per MB above the direct "
          f"baseline")
    added = relay["playlist fetch"] + relay["segment fetch"] - direct["playlist fetch"] - direct["segment fetch"]
    print(f"a new segment reaches the player {added:.0f} ms later through the relay (one playlist and one segment "
          f"fetch, p50); the panel's reported latency differs by {relay['latency'] - direct['latency']:+.2f} s, "
          f"to which add the playlist's {relay['playlist fetch'] - direct['playlist fetch']:.0f} ms (hls.js counts "
          f"from the playlist's arrival)\n")
    for cell in busy:
        stalled = stalls(data["samples"], cell)
        resumed = max(0.0, (stalled[-1][1] - cell.cell_end) / 1000) if stalled else 0.0
        waited = max((r["at"] - r["sent"] for r in requests if r["sent"] in cell), default=0.0)
        delays = [data["rows"][text] - at for text, at in sent.items()
                  if cell.start <= at < cell.cell_end and text in data["rows"]]
        print(f"busy cell of {cell.seconds:g} s, {cell.route:6}: video stalled "
              f"{sum(b - a for a, b in stalled) / 1000:4.1f} s, playing again {resumed:.1f} s after the cell; "
              f"slowest stream fetch {waited / 1000:.1f} s; chat meanwhile p50 {percentile(delays, 0.5):.0f} ms, "
              f"max {max(delays, default=float('nan')):.0f} ms")


def set_comms(scratch: Path, setting: str) -> Path:
    """Write JupyterLab's user setting for where the page's comm messages go (the panel's JUPYTER_CONFIG_DIR)."""
    settings = scratch / "config/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "kernels-settings.jupyterlab-settings").write_text(json.dumps({"commsOverSubshells": setting}))
    return scratch


def write_notebook(path: Path, sandbox: Sandbox, room_arn: str, stream_url: str) -> None:
    source = NOTEBOOK.format(control=sandbox.control_endpoint, region=sandbox.region,
                             key=sandbox.config.access_key_id, secret=sandbox.config.secret_access_key,
                             messaging=sandbox.messaging_endpoint, room=room_arn, stream=stream_url)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in (source, BUSY_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


if __name__ == "__main__":
    main()
