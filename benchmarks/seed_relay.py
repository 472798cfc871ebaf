"""Seed demo benchmark: the page's own WebSocket to the sandbox (direct) vs the one the kernel relays.

A real JupyterLab in headless Chromium shows ``SeedChatDemo`` on the sandbox served by this process.
The route alternates, in the same run, for ``--seconds`` each, with a fresh Run All per route:

- direct: the page is served from 127.0.0.1 and opens the WebSocket itself;
- relay: the page is served under a hub-like name (``jupyter.test``, mapped to loopback by
  Chromium), so the demo goes through its comm at once and the kernel holds the WebSocket.

Meanwhile the page sends a message every 0.5 s from the demo's own form, and another user (this
process) sends one every 0.5 s. Figures per route: the page's send → its own message's row in the
page (one trip to the sandbox and back), the other user's send → its row in the page, and the
kernel's CPU. Then a busy cell of ``--busy`` seconds run from the page on the relay route: how long
the page's messages and the other user's waited meanwhile.

This benchmark's kernel client (beside JupyterLab) closes each route's demo before the next page
opens, and reads the kernel's process id and CPU time.

    python benchmarks/seed_relay.py                                # 3 rounds of 30 s per route, a 10 s cell
    python benchmarks/seed_relay.py --comms disabled               # widget messages wait for the idle kernel
    python benchmarks/seed_relay.py --rounds 1 --seconds 10 --busy 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from panel import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, jupyterlab, token
from playwright.sync_api import sync_playwright
from relay import BUSY_CELL, Chatter, Kernel, percentile, set_comms

from ivs_widgets.sandbox import Sandbox

HUB_HOST = "jupyter.test"
NOTEBOOK = """\
import boto3
from ivs_widgets.chat import ChatToken
from ivs_widgets.widgets import SeedChatDemo

ivschat = boto3.client("ivschat", endpoint_url={control!r}, region_name={region!r},
                       aws_access_key_id={key!r}, aws_secret_access_key={secret!r})
demo = SeedChatDemo({messaging!r}, lambda: ChatToken.from_response(ivschat.create_chat_token(
    roomIdentifier={room!r}, userId="page", capabilities=["SEND_MESSAGE"])), username="Ada")
demo
"""
#: In the page from its first script on: when each row of the demo appeared (Date.now() ms, by text).
RECORDER = r"""
(() => {
  const rows = window.__rows = {};
  new MutationObserver(() => {
    for (const row of document.querySelectorAll(".ivs-seed-text")) rows[row.textContent] ??= Date.now();
  }).observe(document, {childList: true, subtree: true});
})();
"""
#: The page types a message with the time in it every 0.5 s, as the seed's form sends it.
TYPIST = """() => { window.__typist = setInterval(() => {
  const input = document.querySelector(".ivs-seed-input");
  input.value = `page ${Date.now()}`;
  input.form.requestSubmit();
}, 500); }"""
STOP_TYPIST = "() => clearInterval(window.__typist)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="direct/relay alternations")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per route and round")
    parser.add_argument("--busy", type=float, default=10.0, help="the busy cell's length (s), on the relay route")
    parser.add_argument("--comms", choices=["perCommTarget", "disabled"], default="perCommTarget",
                        help="JupyterLab's 'Kernel Comms over subshells' setting (its default: perCommTarget)")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")

    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as scratch, \
            jupyterlab(answer_any_name(set_comms(Path(scratch), args.comms))) as (url, root):
        ivschat = sandbox.client()
        room = ivschat.create_room(name="seed-relay-benchmark", maximumMessageRatePerSecond=100)
        write_notebook(root / "seed.ipynb", sandbox, room["arn"])
        chatter = Chatter(sandbox.messaging_endpoint, token(ivschat, room["arn"], "chatter"))
        chatter.start()
        figures: dict[str, list[dict[str, float]]] = {"direct": [], "relay": []}
        busy = None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                *CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HUB_HOST} 127.0.0.1"])
            pages = {"direct": url, "relay": url.replace("127.0.0.1", HUB_HOST)}
            page = open_demo(browser, pages["direct"], "direct")
            kernel = Kernel(Path(scratch) / "runtime")
            for round_ in range(args.rounds):
                for route in ("direct", "relay"):
                    if round_ or route == "relay":
                        kernel.run("demo.close()")  # its relayed socket, if any, goes with it
                        page.close()
                        page = open_demo(browser, pages[route], route)
                    figures[route].append(measure(page, kernel, chatter, args.seconds))
            if args.busy:
                busy = busy_cell(page, kernel, chatter, args.busy)
            browser.close()
        chatter.stop()
        kernel.close()
    report(args, figures, busy)


def open_demo(browser: Any, server: str, route: str) -> Any:
    """A new page on the notebook, Run All, until the demo is open on ``route``."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.add_init_script(RECORDER)
    page.goto(f"{server}/lab/tree/seed.ipynb?reset", timeout=WAIT_MS)
    page.locator(".jp-StatusBar-TextItem", has_text="| Idle").wait_for(timeout=WAIT_MS)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    page.wait_for_selector(f".ivs-seed[data-route='{route}']", timeout=WAIT_MS)
    return page


def measure(page: Any, kernel: Kernel, chatter: Chatter, seconds: float) -> dict[str, float]:
    cpu, start = kernel.cpu_seconds(), time.time() * 1000
    page.evaluate(TYPIST)
    time.sleep(seconds)  # the page, the kernel and the chatter work meanwhile; this only marks the window
    page.evaluate(STOP_TYPIST)
    end = time.time() * 1000
    cpu = kernel.cpu_seconds() - cpu
    page.wait_for_timeout(2000)  # let the last messages arrive before reading the rows
    echo, received = delays(page, chatter, start, end)
    return {"echo p50": percentile(echo, 0.5), "echo p99": percentile(echo, 0.99),
            "received p50": percentile(received, 0.5), "received p99": percentile(received, 0.99),
            "cpu": 100 * cpu / ((end - start) / 1000), "messages": len(echo) + len(received)}


def delays(page: Any, chatter: Chatter, start: float, end: float) -> tuple[list[float], list[float]]:
    """(the page's own messages, the other user's): send → row in the page, ms, for sends in [start, end)."""
    rows: dict[str, float] = page.evaluate("() => window.__rows")
    echo = [at - float(text.split()[1]) for text, at in rows.items()
            if text.startswith("page ") and start <= float(text.split()[1]) < end]
    received = [rows[text] - at for text, at in list(chatter.sent.items()) if start <= at < end and text in rows]
    return echo, received


def busy_cell(page: Any, kernel: Kernel, chatter: Chatter, seconds: float) -> dict[str, float]:
    """Run the busy cell from the page while it types; the slowest delays of messages sent meanwhile."""
    kernel.run(f"BUSY = {seconds}")
    start = time.time() * 1000
    page.evaluate(TYPIST)
    page.locator(".jp-CodeCell").nth(1).locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").wait_for(state="attached", timeout=WAIT_MS)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(state="attached",
                                                                                 timeout=WAIT_MS + seconds * 1000)
    end = time.time() * 1000
    page.evaluate(STOP_TYPIST)
    page.wait_for_timeout(2000)
    echo, received = delays(page, chatter, start, end)
    return {"seconds": seconds, "echo max": max(echo, default=float("nan")),
            "received max": max(received, default=float("nan"))}


ROWS = [("page's message: send → its row p50 (ms)", "echo p50", "{:.0f}"),
        ("page's message: send → its row p99 (ms)", "echo p99", "{:.0f}"),
        ("other user's message → row p50 (ms)", "received p50", "{:.0f}"),
        ("other user's message → row p99 (ms)", "received p99", "{:.0f}"),
        ("kernel CPU (% of one core)", "cpu", "{:.2f}")]


def report(args: argparse.Namespace, figures: dict[str, list[dict[str, float]]], busy: dict[str, float] | None) -> None:
    print(f"Seed demo relay benchmark — JupyterLab + headless Chromium, {args.rounds} × {args.seconds:g} s per route, "
          f"2 msg/s from the page and 2 msg/s from another user, comms over subshells: {args.comms}")
    print(f"\n{'':44}{'direct':>9}{'relay':>9}{'relay ÷ direct':>16}")
    for label, key, form in ROWS:
        direct, relay = (max(window[key] for window in figures[route]) if "p99" in key else
                         sorted(window[key] for window in figures[route])[len(figures[route]) // 2]
                         for route in ("direct", "relay"))
        ratio = f"{relay / direct:.2f}×" if direct else "–"
        print(f"{label:44}{form.format(direct):>9}{form.format(relay):>9}{ratio:>16}")
    counted = {route: sum(int(window["messages"]) for window in figures[route]) for route in figures}
    print(f"(p50 and CPU: the median round; p99: the worst round; {counted['direct']} and {counted['relay']} "
          "messages)")
    if busy:
        print(f"\nbusy cell of {busy['seconds']:g} s run from the page, relay route: the page's messages waited at "
              f"most {busy['echo max']:.0f} ms for their row, the other user's {busy['received max']:.0f} ms")


def answer_any_name(scratch: Path) -> Path:
    """Let JupyterLab serve pages under the hub-like name too (it refuses a foreign Host by default)."""
    (scratch / "config/jupyter_server_config.json").write_text('{"ServerApp": {"allow_remote_access": true}}')
    return scratch


def write_notebook(path: Path, sandbox: Sandbox, room_arn: str) -> None:
    source = NOTEBOOK.format(control=sandbox.control_endpoint, region=sandbox.region,
                             key=sandbox.config.access_key_id, secret=sandbox.config.secret_access_key,
                             messaging=sandbox.messaging_endpoint, room=room_arn)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in (source, BUSY_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


if __name__ == "__main__":
    main()
