"""Real-browser fixtures: JupyterLab in a subprocess and Debian's Chromium driven by Playwright.

Never ``playwright install``: Chromium comes from apt (/usr/bin/chromium). Without it these tests
skip locally with a reason and fail in CI, where ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labdriver import ARTIFACTS, jupyter_server, run_all_cells

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--autoplay-policy=no-user-gesture-required",
                 # labdriver.HUB_HOST: a hub-like name for the loopback servers.
                 "--host-resolver-rules=MAP jupyter.test 127.0.0.1"]


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


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder JupyterLab serves; tests write their notebooks here."""
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def jupyterlab(lab_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a JupyterLab server running on a free loopback port, with no token."""
    _require_chromium()
    settings = Path(sys.prefix) / "share/jupyter/lab/settings"
    settings.mkdir(parents=True, exist_ok=True)
    overrides = settings / "overrides.json"
    if not overrides.exists():  # silence the "get notified about news?" toast that covers the page
        overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:notification":
                                         {"checkForUpdates": False, "fetchNews": "false"}}))
    with jupyter_server("jupyterlab", lab_root, tmp_path_factory.mktemp("jupyter-home"), "--LabApp.news_url=",
                        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate") as url:
        yield url


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


@pytest.fixture
def run_all(page: Any, jupyterlab: str) -> Any:
    """``run_all("x.ipynb")`` opens a notebook (relative to lab_root) in JupyterLab and runs all cells."""

    def run(notebook: str, timeout_ms: int = 90_000) -> Any:
        run_all_cells(page, f"{jupyterlab}/lab/tree/{notebook}?reset", timeout_ms)
        return page

    return run
