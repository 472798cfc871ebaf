"""The official JS SDK (``amazon-ivs-chat-messaging``, pinned in tests/js) against the sandbox, under Node.

Each test starts a sandbox, creates a room, serves tokens the way an app backend would (a tiny local
HTTP endpoint the SDK's ``tokenProvider`` fetches; every token minted by the sandbox), runs one
scenario of ``tests/js/sdk_scenarios.js`` and asserts on what the SDK reported: its events and how its
promises settled. Node and npm are required in CI; elsewhere the tests skip without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ivs_widgets.protocol.facts import DEFAULT_SESSION_DURATION_MINUTES
from ivs_widgets.sandbox import Sandbox

JS_DIR = Path(__file__).parent / "js"
SCRIPT = JS_DIR / "sdk_scenarios.js"
#: Written after a successful install: the package-lock.json it was installed from.
INSTALL_STAMP = JS_DIR / "node_modules" / ".installed-lock-sha256"
#: `npm ci` downloads three small packages; generous for a slow CI network.
NPM_TIMEOUT = 240
#: Longest wait, inside the Node script, for any one thing the SDK should report.
STEP_MS = 5000
#: Longest a whole scenario may run inside Node, and the subprocess around it.
BUDGET_MS = 30_000
NODE_TIMEOUT = BUDGET_MS / 1000 + 15

pytestmark = pytest.mark.timeout(NPM_TIMEOUT + NODE_TIMEOUT)

Entry = dict[str, Any]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def node() -> str:
    """Path of ``node`` once the pinned SDK is installed in tests/js (``npm ci`` from the lock file)."""
    node_path, npm_path = shutil.which("node"), shutil.which("npm")
    if node_path is None or npm_path is None:
        reason = "Node.js and npm are needed to run the official amazon-ivs-chat-messaging SDK"
        if _in_ci():
            pytest.fail(f"{reason}; they are required when CI is set")
        pytest.skip(reason)
    lock = JS_DIR / "package-lock.json"
    install = "ci" if lock.exists() else "install"
    # Reinstall only when the lock changed: `npm ci` wipes node_modules, which would break another
    # test run (or a worker) that is starting Node in this tree at the same moment.
    fingerprint = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None
    if fingerprint is None or not INSTALL_STAMP.exists() or INSTALL_STAMP.read_text() != fingerprint:
        try:
            done = subprocess.run([npm_path, install, "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True,
                                  text=True, timeout=NPM_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm {install} in {JS_DIR} took longer than {NPM_TIMEOUT} s")
        if done.returncode != 0:
            pytest.fail(f"npm {install} in {JS_DIR} failed:\n{done.stdout}\n{done.stderr}")
        if fingerprint is not None:
            INSTALL_STAMP.write_text(fingerprint)
    return node_path


# -- tokens, as an app backend serves them ----------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """What one user's tokens allow; lifetimes in seconds when a test needs them short."""

    capabilities: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    session_seconds: float | None = None
    token_seconds: float | None = None


class TokenService:
    """``GET /<userId>`` answers a fresh chat token for that user, minted by the sandbox on every call."""

    def __init__(self, sandbox: Sandbox, room_arn: str, grants: dict[str, Grant]) -> None:
        self.sandbox, self.room_arn, self.grants = sandbox, room_arn, grants
        self.calls: Counter[str] = Counter()
        self._ivschat = sandbox.client()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, name="token-service", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def token(self, user: str) -> dict[str, str]:
        """CreateChatToken through boto3, or the sandbox's minter when the test needs lifetimes in seconds."""
        grant = self.grants[user]
        self.calls[user] += 1
        if grant.session_seconds is None and grant.token_seconds is None:
            answer = self._ivschat.create_chat_token(roomIdentifier=self.room_arn, userId=user,
                                                     capabilities=list(grant.capabilities),
                                                     attributes=grant.attributes)
            return {"token": answer["token"], "tokenExpirationTime": answer["tokenExpirationTime"].isoformat(),
                    "sessionExpirationTime": answer["sessionExpirationTime"].isoformat()}
        session = grant.session_seconds or DEFAULT_SESSION_DURATION_MINUTES * 60
        return self.sandbox.control.mint_token(self.room_arn, user, grant.capabilities, grant.attributes,
                                               session_seconds=session, token_seconds=grant.token_seconds)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                user = unquote(self.path.lstrip("/"))
                if user not in service.grants:
                    self.send_error(404, f"no grant for user {user!r}")
                    return
                body = json.dumps(service.token(user)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler


@pytest.fixture
def token_service(sandbox: Sandbox) -> Iterator[Callable[[str, dict[str, Grant]], TokenService]]:
    started: list[TokenService] = []

    def start(room_arn: str, grants: dict[str, Grant]) -> TokenService:
        started.append(TokenService(sandbox, room_arn, grants))
        return started[-1]

    yield start
    for service in started:
        service.close()


# -- running a scenario -------------------------------------------------------------------------------
class Transcript:
    """The JSON lines a scenario printed: everything the SDK reported, in order."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def of(self, user: str, kind: str | None = None) -> list[Entry]:
        return [e for e in self.entries if e.get("user") == user and (kind is None or e["type"] == kind)]

    def lifecycle(self, user: str) -> list[str]:
        """Connection events only, e.g. ``["connecting", "connect", "disconnect:clientDisconnect"]``."""
        return [e["type"] + (f":{e['reason']}" if e["type"] == "disconnect" else "")
                for e in self.of(user) if e["type"] in ("connecting", "connect", "disconnect")]

    def settled(self, user: str, op: str) -> list[Entry]:
        return [e for e in self.of(user) if e["type"] in ("resolved", "rejected") and e["op"] == op]

    def message_ids(self, user: str) -> list[str]:
        return [e["message"]["id"] for e in self.of(user, "message")]


def run_scenario(node: str, sandbox: Sandbox, tokens: TokenService, scenario: str, **params: Any) -> Transcript:
    config = {"url": sandbox.messaging_endpoint, "tokenUrl": tokens.url, "stepMs": STEP_MS, "budgetMs": BUDGET_MS,
              **params}
    try:
        done = subprocess.run([node, str(SCRIPT), scenario, json.dumps(config)], cwd=JS_DIR, capture_output=True,
                              text=True, timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"scenario {scenario} hung for {NODE_TIMEOUT} s; output so far:\n"
                    f"{expired.stdout!r}\n{expired.stderr!r}")
    entries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not entries or entries[-1]["type"] != "done":
        pytest.fail(f"scenario {scenario} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Transcript(entries[:-1])


SEND = ("SEND_MESSAGE",)


# -- scenarios ------------------------------------------------------------------------------------------
def test_sdk_connects_and_disconnects_cleanly(node: str, sandbox: Sandbox, room: dict[str, Any],
                                              token_service: Callable[..., TokenService]) -> None:
    tokens = token_service(room["arn"], {"alice": Grant(SEND)})
    transcript = run_scenario(node, sandbox, tokens, "connect")
    assert transcript.lifecycle("alice") == ["connecting", "connect", "disconnect:clientDisconnect"]
    assert tokens.calls["alice"] == 1


def test_two_users_chat_and_each_sees_both_messages(node: str, sandbox: Sandbox, room: dict[str, Any],
                                                    token_service: Callable[..., TokenService]) -> None:
    tokens = token_service(room["arn"], {"alice": Grant(SEND, {"displayName": "Alice"}), "bob": Grant(SEND)})
    transcript = run_scenario(node, sandbox, tokens, "chat")

    [sent_by_alice] = transcript.settled("alice", "sendMessage")
    [sent_by_bob] = transcript.settled("bob", "sendMessage")
    assert sent_by_alice["type"] == sent_by_bob["type"] == "resolved"
    message = sent_by_alice["value"]
    assert message["content"] == "hello bob"
    assert message["attributes"] == {"color": "red"}
    assert message["sender"] == {"userId": "alice", "attributes": {"displayName": "Alice"}}
    assert message["requestId"] == sent_by_alice["requestId"]
    assert sent_by_bob["value"]["sender"]["userId"] == "bob"

    both = [message["id"], sent_by_bob["value"]["id"]]
    assert transcript.message_ids("alice") == both  # her own echo, then bob's message
    assert transcript.message_ids("bob") == both
    assert transcript.of("bob", "message")[0]["message"] == message  # what bob sees is what alice's promise gave


def test_delete_message_resolves_and_the_author_sees_it_deleted(node: str, sandbox: Sandbox, room: dict[str, Any],
                                                                token_service: Callable[..., TokenService]) -> None:
    tokens = token_service(room["arn"], {"alice": Grant(SEND), "bob": Grant(("SEND_MESSAGE", "DELETE_MESSAGE"))})
    transcript = run_scenario(node, sandbox, tokens, "delete")

    message_id = transcript.settled("alice", "sendMessage")[0]["value"]["id"]
    [deleted] = transcript.settled("bob", "deleteMessage")
    assert deleted["type"] == "resolved"
    assert deleted["value"]["messageId"] == message_id
    assert deleted["value"]["requestId"] == deleted["requestId"]
    [seen_by_alice] = transcript.of("alice", "messageDelete")
    assert seen_by_alice["event"]["messageId"] == message_id
    assert seen_by_alice["event"]["reason"] == "spam"


def test_disconnect_user_resolves_and_the_target_is_disconnected_by_the_server(
        node: str, sandbox: Sandbox, room: dict[str, Any], token_service: Callable[..., TokenService]) -> None:
    tokens = token_service(room["arn"], {"alice": Grant(SEND), "bob": Grant(("SEND_MESSAGE", "DISCONNECT_USER"))})
    transcript = run_scenario(node, sandbox, tokens, "disconnect")

    [kicked] = transcript.settled("bob", "disconnectUser")
    assert kicked["type"] == "resolved"
    assert kicked["value"]["userId"] == "alice"
    assert kicked["value"]["reason"] == "be nice"
    assert transcript.lifecycle("alice") == ["connecting", "connect", "disconnect:serverDisconnect"]
    assert tokens.calls["alice"] == 1  # a moderator's disconnect is final: the SDK does not reconnect
    # Only alice was disconnected: bob still chats, and leaves on his own terms.
    assert transcript.settled("bob", "sendMessage")[0]["type"] == "resolved"
    assert transcript.lifecycle("bob") == ["connecting", "connect", "disconnect:clientDisconnect"]


def test_refused_requests_reject_with_the_error_code(node: str, sandbox: Sandbox, ivschat: Any,
                                                     token_service: Callable[..., TokenService]) -> None:
    room = ivschat.create_room(maximumMessageLength=10)
    tokens = token_service(room["arn"], {"alice": Grant(()), "bob": Grant(SEND)})
    transcript = run_scenario(node, sandbox, tokens, "errors", maximumMessageLength=10)

    [no_capability] = transcript.settled("alice", "sendMessage")
    assert no_capability["type"] == "rejected"
    assert no_capability["error"]["errorCode"] == 403
    assert no_capability["error"]["requestId"] == no_capability["requestId"]
    too_long, emoji_at_limit = transcript.settled("bob", "sendMessage")
    assert too_long["type"] == "rejected"
    assert too_long["error"]["errorCode"] == 400
    assert emoji_at_limit["type"] == "resolved"  # the limit counts characters, not UTF-16 units
    assert transcript.message_ids("alice") == transcript.message_ids("bob") == [emoji_at_limit["value"]["id"]]
    for user in ("alice", "bob"):  # an error answers one request; it never costs the connection
        assert transcript.lifecycle(user) == ["connecting", "connect", "disconnect:clientDisconnect"]


def test_token_rotation_opens_new_connections_without_losing_or_repeating_messages(
        node: str, sandbox: Sandbox, ivschat: Any, token_service: Callable[..., TokenService]) -> None:
    room = ivschat.create_room(maximumMessageRatePerSecond=100)
    # The SDK opens its next connection 30 s before a short token expires: 32 s means 1 to 2 s after each open
    # (expiry times are whole seconds, cut down).
    tokens = token_service(room["arn"], {"alice": Grant(SEND, token_seconds=32), "bob": Grant(SEND)})
    transcript = run_scenario(node, sandbox, tokens, "rotation", rotations=2, messagesAfterRotations=5,
                              maxMessages=400, paceMs=50)

    # The SDK asks for its third token only once its second connection is open and in use.
    assert tokens.calls["alice"] >= 3
    token_requests = transcript.of("alice", "tokenRequest")
    assert len(token_requests) == tokens.calls["alice"]
    after_switch = transcript.entries[transcript.entries.index(token_requests[2]):]
    assert any(e["type"] == "message" and e["user"] == "alice" for e in after_switch)
    # Rotation is invisible to the app: one connect, no reconnect, no disconnect until she leaves.
    assert transcript.lifecycle("alice") == ["connecting", "connect", "disconnect:clientDisconnect"]
    sent = [e["value"]["id"] for e in transcript.entries if e["type"] == "resolved"]
    assert len(sent) >= 5 + 2
    assert transcript.message_ids("alice") == sent  # every message, once, in order
    assert transcript.message_ids("bob") == sent


def test_session_expiry_makes_the_sdk_reconnect_silently(node: str, sandbox: Sandbox, room: dict[str, Any],
                                                         token_service: Callable[..., TokenService]) -> None:
    tokens = token_service(room["arn"], {"alice": Grant(SEND, session_seconds=2)})
    transcript = run_scenario(node, sandbox, tokens, "expiry", sessionMs=2000)

    lifecycle = transcript.lifecycle("alice")
    assert lifecycle[:4] == ["connecting", "connect", "connecting", "connect"]
    assert lifecycle[-1] == "disconnect:clientDisconnect"  # the only disconnect is her own, at the end
    assert "disconnect:serverDisconnect" not in lifecycle
    [back] = transcript.settled("alice", "sendMessage")
    assert back["type"] == "resolved"  # the new connection works
    assert tokens.calls["alice"] >= 2
