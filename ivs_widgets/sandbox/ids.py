"""Identifiers, ARNs and timestamps in the shapes Amazon IVS Chat uses."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timezone

from ivs_widgets.constants import ID_LENGTH

_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    """A fresh 12-character alphanumeric id, like ``j0mJloyM8mOy``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


def arn(region: str, account: str, kind: str, resource_id: str) -> str:
    """``arn:aws:ivschat:REGION:ACCOUNT:KIND/ID`` for ``room`` or ``logging-configuration``."""
    return f"arn:aws:ivschat:{region}:{account}:{kind}/{resource_id}"


def arn_resource_id(resource_arn: str) -> str:
    """The id at the end of an ARN (the text after the last ``/``)."""
    return resource_arn.rsplit("/", 1)[-1]


def now() -> datetime:
    return datetime.now(timezone.utc)


def from_epoch(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as the control plane returns times."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rfc3339_nanos(epoch_ns: int) -> str:
    """RFC 3339 UTC with up to nine fractional digits, trailing zeros trimmed (messaging SendTime)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"
