"""One function per validation rule that more than one place applies.

The sandbox answers a broken rule with the error of the surface it arrived on (a ValidationException
on the control plane, an ERROR frame on the messaging endpoint, a fallback for a review handler's
answer); the client uses the same functions to explain a refusal without parsing the server's words.
Each function only answers the question; callers choose the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

from ivs_widgets.protocol.facts import MAX_ATTRIBUTES_BYTES


def is_unicode(value: str) -> bool:
    """False for a string holding a lone surrogate: JSON can spell one (``\\ud800``), UTF-8 cannot,
    so it could never be sent on to anyone."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def attributes_bytes(attributes: Mapping[str, str]) -> int:
    """Size of an attribute map as the service counts it: keys plus values, in UTF-8 bytes."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in attributes.items())


def attributes_fit(attributes: Mapping[str, str] | None) -> bool:
    """Token, event and message attribute maps total at most ``MAX_ATTRIBUTES_BYTES`` (documented)."""
    return not attributes or attributes_bytes(attributes) <= MAX_ATTRIBUTES_BYTES


def is_string_map(value: object) -> TypeGuard[dict[str, str]]:
    """Attributes are a JSON object whose keys and values are all strings."""
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def content_problem(content: str, max_length: int) -> str | None:
    """Why a message's content cannot be sent in a room allowing ``max_length`` characters (code
    points, as the service counts), or None. The service answers either problem with ERROR 400."""
    if not content:
        return "Content must not be empty"
    if len(content) > max_length:
        return f"Content is {len(content)} characters; the room allows at most {max_length}"
    return None


def display_name_problem(name: str, max_length: int) -> str | None:
    """Why ``name`` (already stripped) cannot be shown as a display name, or None."""
    if not is_unicode(name):
        return "must be valid Unicode"
    if not 0 < len(name) <= max_length:
        return f"must be 1 to {max_length} characters"
    if not name.isprintable():
        return "must not contain control characters"
    return None
