"""The sandbox's resources: rooms, logging configurations, channels, stream keys and stream sessions
(with their tags), and spent chat tokens.

Resources are kept as the dicts the API returns (times as ISO strings) plus an ``_order`` key
for sorting. Thread-safe: the HTTP handlers, the messaging server and notebook code may touch it
from different threads. With a path it writes through to sqlite, so a restart keeps everything.
"""

from __future__ import annotations

import copy
import heapq
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivs_widgets.sandbox.core import tokens

Resource = dict[str, Any]

ROOM = "room"
LOGGING_CONFIGURATION = "logging-configuration"
#: A room a workshop presenter opened to attendees, keyed (in its ``arn`` field) by its room code.
INVITE = "workshop-invite"
#: What a workshop reset forgets: the chat's resources, not the live video's.
CHAT_KINDS = (ROOM, LOGGING_CONFIGURATION, INVITE)
CHANNEL = "channel"
STREAM_KEY = "stream-key"
#: A live or ended stream of a channel, keyed (in its ``arn`` field) by its stream id.
STREAM_SESSION = "stream-session"


def public(resource: Resource, keys: tuple[str, ...] | None = None) -> Resource:
    """The API view of a stored resource: internal keys dropped, optionally only ``keys``."""
    return {k: v for k, v in resource.items() if not k.startswith("_") and (keys is None or k in keys)}


class State:
    def __init__(self, path: Path | str | None = None) -> None:
        self._lock = threading.RLock()
        self._resources: dict[str, dict[str, Resource]] = {
            kind: {} for kind in (*CHAT_KINDS, CHANNEL, STREAM_KEY, STREAM_SESSION)}
        self._spent_tokens: dict[str, float] = {}
        #: (expiry, jti) of the spent tokens, soonest first: expired ones leave in O(log n), not by a scan per join.
        self._spent_expiries: list[tuple[float, str]] = []
        self._meta: dict[str, bytes] = {}
        self._db: sqlite3.Connection | None = None
        #: Bumped by every change to a resource, so caches (the chat log sinks) know to look again.
        self.generation = 0
        self.token_secret = tokens.new_secret()
        if path is not None:
            self._open(Path(path))

    # -- persistence -------------------------------------------------------------------------
    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE IF NOT EXISTS resources (arn TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS spent_tokens (jti TEXT PRIMARY KEY, expires REAL NOT NULL);"
            "CREATE INDEX IF NOT EXISTS spent_tokens_by_expiry ON spent_tokens (expires);"
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
        )
        for arn, kind, body in self._db.execute("SELECT arn, kind, body FROM resources"):
            self._resources[kind][arn] = json.loads(body)
        self._spent_tokens = dict(self._db.execute("SELECT jti, expires FROM spent_tokens"))
        self._spent_expiries = sorted((e, k) for k, e in self._spent_tokens.items())
        self._meta = {key: bytes(value) for key, value in self._db.execute("SELECT key, value FROM meta")}
        self.token_secret = self.remember("token_secret", lambda: self.token_secret)

    def remember(self, key: str, make: Callable[[], bytes]) -> bytes:
        """The value kept under ``key``, made and stored on first use (secrets, the workshop's CA):
        with a state file it survives restarts and resets."""
        with self._lock:
            if key not in self._meta:
                self._meta[key] = make()
                if self._db is not None:
                    self._db.execute("INSERT INTO meta VALUES (?, ?)", (key, self._meta[key]))
            return self._meta[key]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- resources ---------------------------------------------------------------------------
    def get(self, kind: str, arn: str) -> Resource | None:
        with self._lock:
            found = self._resources[kind].get(arn)
            return copy.deepcopy(found) if found is not None else None

    def all(self, kind: str) -> list[Resource]:
        """Every resource of a kind, newest-updated first."""
        with self._lock:
            items = copy.deepcopy(list(self._resources[kind].values()))
        return sorted(items, key=lambda r: (r["_order"], r["arn"]), reverse=True)

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._resources[kind])

    def put(self, kind: str, resource: Resource, *, updated: bool = True) -> None:
        """Insert or replace. ``updated`` stamps the ordering key so ListRooms sorts by latest update;
        changes that leave updateTime alone (tags) keep the resource's place."""
        if updated or "_order" not in resource:
            resource["_order"] = time.time_ns()
        with self._lock:
            self._resources[kind][resource["arn"]] = copy.deepcopy(resource)
            self.generation += 1
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO resources VALUES (?, ?, ?)",
                                 (resource["arn"], kind, json.dumps(resource)))

    def remove(self, kind: str, arn: str) -> None:
        with self._lock:
            self._resources[kind].pop(arn, None)
            self.generation += 1
            if self._db is not None:
                self._db.execute("DELETE FROM resources WHERE arn = ?", (arn,))

    def find(self, arn: str, kinds: tuple[str, ...]) -> tuple[str, Resource] | None:
        """The kind and resource an ARN names, whichever of ``kinds`` it is."""
        for kind in kinds:
            resource = self.get(kind, arn)
            if resource is not None:
                return kind, resource
        return None

    def reset(self) -> None:
        """Forget every room, logging configuration, invite and spent token (workshop reset); secrets,
        the CA and the live video's channels stay."""
        with self._lock:
            for kind in CHAT_KINDS:
                self._resources[kind].clear()
            self.generation += 1
            self._spent_tokens.clear()
            self._spent_expiries.clear()
            if self._db is not None:
                self._db.execute(f"DELETE FROM resources WHERE kind IN ({', '.join('?' * len(CHAT_KINDS))})",
                                 CHAT_KINDS)
                self._db.execute("DELETE FROM spent_tokens")

    # -- tokens ------------------------------------------------------------------------------
    def spend_token(self, jti: str, expires: float, now: float) -> bool:
        """Mark a token used; False if it was used before (each token opens one connection)."""
        with self._lock:
            if jti in self._spent_tokens:
                return False
            while self._spent_expiries and self._spent_expiries[0][0] <= now:
                del self._spent_tokens[heapq.heappop(self._spent_expiries)[1]]
            self._spent_tokens[jti] = expires
            heapq.heappush(self._spent_expiries, (expires, jti))
            if self._db is not None:
                self._db.execute("DELETE FROM spent_tokens WHERE expires <= ?", (now,))
                self._db.execute("INSERT INTO spent_tokens VALUES (?, ?)", (jti, expires))
            return True
