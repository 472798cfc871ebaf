"""Identifiers, ARNs, timestamps and certificate fingerprints in the shapes both sides agree on."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from datetime import UTC, datetime

from ivs_widgets.protocol.facts import ID_LENGTH

_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int = ID_LENGTH) -> str:
    """A fresh alphanumeric id, 12 characters unless told, like ``j0mJloyM8mOy``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def arn(region: str, account: str, kind: str, resource_id: str, service: str = "ivschat") -> str:
    """``arn:aws:SERVICE:REGION:ACCOUNT:KIND/ID``: an ``ivschat`` room or logging-configuration, an
    ``ivs`` channel or stream-key."""
    return f"arn:aws:{service}:{region}:{account}:{kind}/{resource_id}"


def stream_id(length: int) -> str:
    """An ``ivs`` stream id: ``st-`` and alphanumerics, ``length`` characters in all (the model fixes it)."""
    return "st-" + new_id(length - 3)


def stream_key_value(region: str) -> str:
    """A stream key's secret value in the service's shape, ``sk_REGION_`` and two random groups."""
    return f"sk_{region}_{new_id()}_{new_id()}"


def arn_parts(resource_arn: str, kind: str) -> tuple[str, str, str]:
    """(region, account, id) of ``arn:aws:ivschat:REGION:ACCOUNT:KIND/ID``; ValueError for anything else."""
    parts = resource_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith(f"{kind}/"):
        raise ValueError(f"not a chat {kind} ARN: {resource_arn!r}")
    return parts[3], parts[4], parts[5][len(kind) + 1:]


def arn_resource_id(resource_arn: str) -> str:
    """The id at the end of an ARN (the text after the last ``/``)."""
    return resource_arn.rsplit("/", 1)[-1]


def now() -> datetime:
    return datetime.now(UTC)


def from_epoch(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as the control plane returns times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rfc3339_nanos(epoch_ns: int) -> str:
    """RFC 3339 UTC with up to nine fractional digits, trailing zeros trimmed (messaging SendTime)."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_time(text: str) -> datetime:
    """RFC 3339 with up to nine fractional digits (Python keeps microseconds)."""
    head, _, fraction = text.rstrip("Z").partition(".")
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micros, tzinfo=UTC)


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the first certificate in ``pem``, as browsers and ``openssl x509 -fingerprint`` show
    it: what a workshop presenter shares and an attendee checks."""
    found = _PEM_CERTIFICATE.search(pem)
    if found is None:
        raise ValueError("no PEM certificate found")
    digest = hashlib.sha256(base64.b64decode(b"".join(found.group(1).split()))).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)).upper()
