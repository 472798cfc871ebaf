"""Real-browser fixtures: JupyterLab in a subprocess and Debian's Chromium driven by Playwright.

Never ``playwright install``: Chromium comes from apt (/usr/bin/chromium). Without it these tests
skip locally with a reason and fail in CI, where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: runs JupyterLab and Chromium (real browser test)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def _require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); browser tests skipped locally")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder JupyterLab serves; tests write their notebooks here."""
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def jupyterlab(lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a JupyterLab server running on a free loopback port, with no token."""
    _require_chromium()
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"), "PYTHONUNBUFFERED": "1"}
    settings = Path(sys.prefix) / "share/jupyter/lab/settings"
    settings.mkdir(parents=True, exist_ok=True)
    overrides = settings / "overrides.json"
    if not overrides.exists():  # silence the "get notified about news?" toast that covers the page
        overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:notification":
                                         {"checkForUpdates": False, "fetchNews": "false"}}))
    port = _free_port()
    log = open(home / "lab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={lab_root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # poll until the server answers: there is no event to await across processes
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start; see {home / 'lab.log'}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not session-wide: Playwright's sync API keeps an event loop
    running on the main thread while it is open, which breaks the asyncio tests that run after."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; on failure a screenshot goes to test-artifacts/<test name>.png."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def _cells_started(page: Any, timeout_ms: int) -> bool:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    prompts = r"() => [...document.querySelectorAll('.jp-InputPrompt')].some((p) => /\[[0-9*]+\]/.test(p.textContent))"
    try:
        page.wait_for_function(prompts, timeout=timeout_ms)
    except PlaywrightTimeout:
        return False
    return True


@pytest.fixture
def run_all(page: Any, jupyterlab: str) -> Any:
    """``run_all("x.ipynb")`` opens a notebook (relative to lab_root) in JupyterLab and runs all cells.

    Under load JupyterLab sometimes opens the notebook before it knows its kernel: it then asks
    "Select Kernel" (a modal dialog that swallows clicks) or accepts "Run All Cells" and runs
    nothing. Both were seen; this answers the dialog and clicks again until cells start.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    def run(notebook: str, timeout_ms: int = 90_000) -> Any:
        page.goto(f"{jupyterlab}/lab/tree/{notebook}?reset", timeout=timeout_ms)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
        for _ in range(3):
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():
                dialog.first.click()  # "Select" the notebook's own kernel (python3)
                if _cells_started(page, 10_000):  # a Run All that waited on the dialog goes ahead
                    return page
            page.keyboard.press("Escape")  # close a menu left open by an interrupted attempt
            try:
                page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
                page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
            except PlaywrightTimeout:
                continue
            if _cells_started(page, 20_000):
                return page
        pytest.fail("JupyterLab ran none of the notebook's cells")

    return run
