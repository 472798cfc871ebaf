"""The layers keep one direction of dependency, so each side loads only what it needs.

An attendee's Voila page and an AWS-only user import the client side (``chat``, ``widgets``,
``workshop``, ``backend``) and must never pay for the sandbox's server: tornado, the WebSocket
server, sqlite, certificate signing. The sandbox never imports the client, and no service imports
the module that wires the services together.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ivs_widgets"
SERVER_ONLY = ("tornado", "websockets.asyncio.server", "sqlite3", "cryptography.x509")
CLIENT_SIDE = ("ivs_widgets.chat", "ivs_widgets.widgets", "ivs_widgets.backend", "ivs_widgets.workshop",
               "ivs_widgets.simulator")


@pytest.mark.parametrize("module", ["ivs_widgets", "ivs_widgets.chat", "ivs_widgets.widgets", "ivs_widgets.workshop",
                                    "ivs_widgets.backend", "ivs_widgets.widgets.join_form",
                                    "ivs_widgets.protocol.frames"])
def test_the_client_side_loads_nothing_of_the_server(module: str) -> None:
    probe = (f"import sys, json, {module}\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m in {SERVER_ONLY!r} "
             f"or m.startswith('ivs_widgets.sandbox'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                       timeout=120).stdout)
    assert loaded == []


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth (inside functions too), as absolute names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _module_files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _touches(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == target or name.startswith(target + ".") for target in targets)


def test_the_sandbox_never_imports_the_client() -> None:
    offending = {str(path.relative_to(PACKAGE)): name for path in _module_files("sandbox")
                 for name in _imports(path) if _touches(name, CLIENT_SIDE)}
    assert offending == {}


def test_the_protocol_layer_imports_neither_side() -> None:
    offending = {str(path.relative_to(PACKAGE)): name for path in _module_files("protocol")
                 for name in _imports(path) if _touches(name, ("ivs_widgets.sandbox", *CLIENT_SIDE))}
    assert offending == {}


def test_no_service_imports_the_module_that_wires_them() -> None:
    services = [path for path in _module_files("sandbox") if path.parent != PACKAGE / "sandbox"]
    assert services, "the sandbox has service folders"
    offending = {str(path.relative_to(PACKAGE)): name for path in services for name in _imports(path)
                 if _touches(name, ("ivs_widgets.sandbox.server",)) or name == "ivs_widgets.sandbox.Sandbox"}
    assert offending == {}


def test_the_client_side_imports_the_sandbox_only_inside_functions() -> None:
    """``backend.connect()`` and ``workshop.start()`` start an embedded sandbox; nothing else may."""
    offending = {}
    for path in [*(PACKAGE / name.split(".")[1] for name in CLIENT_SIDE)]:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        for file in files:
            for node in ast.parse(file.read_text()).body:  # module level only
                names = _imports_of(node)
                bad = [n for n in names if _touches(n, ("ivs_widgets.sandbox",))]
                if bad:
                    offending[str(file.relative_to(PACKAGE))] = bad
    assert offending == {}


def _imports_of(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def test_every_error_the_kit_raises_shares_one_base() -> None:
    from ivs_widgets import IvsWidgetsError, WorkshopError
    from ivs_widgets.chat import ChatConnectionError, ChatError
    from ivs_widgets.protocol.chat_logs import ChatLogError
    from ivs_widgets.protocol.frames import FrameError
    from ivs_widgets.sandbox.core.errors import ApiError, validation_error
    from ivs_widgets.sandbox.core.tokens import TokenError
    from ivs_widgets.sandbox.stream.models import StreamError

    for error in (ApiError, TokenError, FrameError, ChatError, ChatConnectionError, WorkshopError, ChatLogError,
                  StreamError):
        assert issubclass(error, IvsWidgetsError), error
    refused = validation_error("displayName must be 1 to 64 characters", field="displayName")
    assert (refused.code, refused.reason, refused.fields) == ("ValidationException", "FIELD_VALIDATION_FAILED",
                                                              ("displayName",))
