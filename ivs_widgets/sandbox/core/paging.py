"""List operations' pages: one slice of resources, newest first, and the opaque ``nextToken`` after it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ivs_widgets.sandbox.core.errors import validation_error
from ivs_widgets.sandbox.core.state import Resource


def paginate(items: list[Resource], p: dict[str, Any], default_size: int) -> tuple[list[Resource], dict[str, Any]]:
    """The page of ``items`` (sorted by ``_order`` and ``arn``, newest first) that ``p``'s ``nextToken`` and
    ``maxResults`` ask for, and the ``nextToken`` member of the answer (empty on the last page).

    The cursor names the last resource given, so resources added or removed between pages neither
    repeat nor shift the rest."""
    start = 0
    if p.get("nextToken"):
        try:
            cursor = json.loads(base64.urlsafe_b64decode(p["nextToken"].encode()))
            start = next(i for i, r in enumerate(items) if (r["_order"], r["arn"]) < (cursor[0], cursor[1]))
        except StopIteration:
            start = len(items)
        except (ValueError, TypeError, IndexError, KeyError, binascii.Error):
            raise validation_error("The nextToken is not valid", field="nextToken") from None
    size = p.get("maxResults", default_size)
    page = items[start:start + size]
    if start + size < len(items):
        last = page[-1]
        token = base64.urlsafe_b64encode(json.dumps([last["_order"], last["arn"]]).encode()).decode()
        return page, {"nextToken": token}
    return page, {}
