"""Readable output for notebooks: API responses as JSON, with chat tokens masked.

A chat token is a credential: whoever holds it can join the room as that user until it expires,
so notebook outputs (which end up on GitHub) show only its first characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

_SECRET_KEYS = {"token"}


def mask(token: str, keep: int = 8) -> str:
    return f"{token[:keep]}…({len(token)} characters)" if len(token) > keep else "…"


def _clean(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _clean(v, k) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if key in _SECRET_KEYS and isinstance(value, str):
        return mask(value)
    return value


def show(response: Mapping[str, Any]) -> None:
    """Print a boto3 response as indented JSON, without ResponseMetadata and with tokens masked."""
    print(json.dumps(_clean(response), indent=2, ensure_ascii=False))
