"""Driving Jupyter front ends in the browser tests: start a server, Run All in a notebook.

Shared by the JupyterLab fixtures in conftest.py and the Notebook 7 test, which differ only in the
server module they start and the URL of a notebook.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest

#: Screenshots: of failed tests (conftest.py) and the ones tests take to be looked at.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: Where a hub serves a user's server; the browser tests serve Jupyter and Voila under it.
BASE_URL = "/user/learner/"
#: A hub-like name for the loopback servers: conftest.CHROMIUM_ARGS maps it to 127.0.0.1.
HUB_HOST = "jupyter.test"
#: Names of the machine the kernels run on, as a page could address it.
KERNEL_MACHINE = ("127.0.0.1", "localhost", "[::1]", HUB_HOST)

#: Notebook 7.6's own front end throws this on every page, /tree included, with no widget in sight:
#: a race in its settings load (jupyter/notebook#7862, open). Any other page error is ours.
UPSTREAM_ERROR = "Cannot read properties of undefined (reading 'schema')"

#: Any cell prompt shows an execution count or "*": Run All has started.
CELLS_STARTED = (r"() => [...document.querySelectorAll('.jp-InputPrompt')]"
                 r".some((p) => /\[[0-9*]+\]/.test(p.textContent))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(command: list[str], port: int, home: Path, name: str) -> Iterator[str]:
    """Run ``command`` (a server that will listen on ``port``) with Jupyter's config and runtime files
    under ``home``; yield its base URL once it accepts connections; stop it afterwards."""
    env = {**os.environ, **{f"JUPYTER_{d.upper()}_DIR": str(home / d) for d in ("config", "runtime", "data")},
           "PYTHONUNBUFFERED": "1"}
    with open(home / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:  # poll until it listens: there is no event to await across processes
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"{name} did not start; see {log.name}")
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def jupyter_server(module: str, root: Path, home: Path, *extra: str) -> Iterator[str]:
    """Base URL of ``python -m MODULE`` (jupyterlab, notebook) serving ``root`` on a free loopback
    port with no token."""
    port = free_port()
    with server_process([sys.executable, "-m", module, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
                         "--allow-root", *extra], port, home, module) as url:
        yield url


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of these code cells, for the python3 kernel."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def record_kernel_messages(page: Any, needle: str) -> None:
    """From the next page load on, ``window.kernelMessages`` collects each message the page sends to a
    kernel that contains ``needle``: ``{at: performance.now(), text, positions: [currentTime of each
    <video>]}`` as it leaves."""
    page.add_init_script("(() => { const needle = " + json.dumps(needle) + ";" + """
      window.kernelMessages = [];
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        const bytes = typeof data === "string" ? null : ArrayBuffer.isView(data) ? data : new Uint8Array(data);
        const text = bytes ? new TextDecoder().decode(bytes) : data;
        if (text.includes(needle)) {
          const positions = [...document.querySelectorAll("video")].map((video) => video.currentTime);
          window.kernelMessages.push({at: performance.now(), text, positions});
        }
        return send.call(this, data);
      };
    })();""")


def page_errors(page: Any) -> list[str]:
    """A list that collects the page's uncaught errors from now on, but the known upstream one."""
    errors: list[str] = []

    def record(error: Any) -> None:
        if not (error.message == UPSTREAM_ERROR and "notebook_core" in (error.stack or "")):
            errors.append(str(error))

    page.on("pageerror", record)
    return errors


def only_the_server(page: Any, origin: str) -> list[str]:
    """Route the page as on Binder or JupyterHub: abort every request and WebSocket to the kernel's
    machine but those to ``origin`` (the Jupyter or Voila server); return the aborted URLs."""
    aborted: list[str] = []
    server = urlsplit(origin)
    schemes = (server.scheme, server.scheme.replace("http", "ws"))  # its pages, and its kernels' WebSockets

    def elsewhere(address: str) -> bool:
        url = urlsplit(address)
        return url.hostname in KERNEL_MACHINE and (url.netloc != server.netloc or url.scheme not in schemes)

    def route(route: Any) -> None:
        if elsewhere(route.request.url):
            aborted.append(route.request.url)
            route.abort("addressunreachable")
        else:
            route.continue_()

    def refuse(socket: Any) -> None:
        """As a refused connection looks to the page: closed (1006) without ever opening."""
        aborted.append(socket.url)
        socket.close(code=1006)

    page.route("**/*", route)
    page.route_web_socket(elsewhere, refuse)
    return aborted


def shut_down_kernels(page: Any, server_url: str, notebook: str) -> None:
    """End the sessions (and kernels, and whatever they started) of ``notebook`` on the server.

    From the page: it holds the server's XSRF cookie, which a DELETE needs, and resolves the
    server's name as the test made it.
    """
    page.evaluate("""async ([server, path]) => {
        const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)?.[1] ?? "";
        const sessions = await (await fetch(`${server}/api/sessions`)).json();
        for (const session of sessions.filter((s) => s.path === path)) {
            const response = await fetch(`${server}/api/sessions/${session.id}`,
                                         {method: "DELETE", headers: {"X-XSRFToken": xsrf}});
            if (!response.ok) throw new Error(`DELETE session: HTTP ${response.status}`);
        }
    }""", [server_url, notebook])


def run_all_cells(page: Any, notebook_url: str, timeout_ms: int = 90_000) -> None:
    """Open a notebook and choose Run → Run All Cells until its cells start.

    Under load the front end sometimes opens the notebook before it knows its kernel: it then asks
    "Select Kernel" (a modal dialog that swallows clicks) or accepts "Run All Cells" and runs
    nothing. Both were seen; this answers the dialog and clicks again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(notebook_url, timeout=timeout_ms)
    # "attached": Notebook 7 hides the indicator in a narrow toolbar, but it still reports the kernel.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached",
                           timeout=timeout_ms)

    def started(wait_ms: int) -> bool:
        try:
            page.wait_for_function(CELLS_STARTED, timeout=wait_ms)
        except PlaywrightTimeout:
            return False
        return True

    for _ in range(3):
        dialog = page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()  # "Select" the notebook's own kernel (python3)
            if started(10_000):  # a Run All that waited on the dialog goes ahead
                return
        page.keyboard.press("Escape")  # close a menu left open by an interrupted attempt
        try:
            page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
        except PlaywrightTimeout:
            continue
        if started(20_000):
            return
    pytest.fail("the notebook's cells never started running")
