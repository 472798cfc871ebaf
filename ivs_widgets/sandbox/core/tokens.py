"""Chat tokens: the one place that knows their format.

A token is ``v1.<claims>.<signature>``: base64url (no padding) of compact JSON claims, and an
HMAC-SHA256 of them under the sandbox's secret. Every character is an RFC 7230 ``tchar``, because
the token travels as the WebSocket subprotocol. The signature binds room, user, capabilities,
attributes and both expiry times, so a token cannot be forged or edited; single use is enforced by
the messaging server, which remembers the ``jti`` of every token it has accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field

from ivs_widgets.protocol.errors import IvsWidgetsError

_PREFIX = "v1"


class TokenError(IvsWidgetsError):
    """The token cannot open a connection; ``reason`` says why in words a user understands."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=401)


@dataclass(frozen=True)
class TokenClaims:
    room_arn: str
    user_id: str
    capabilities: tuple[str, ...]
    attributes: dict[str, str] = field(default_factory=dict)
    issued_at: float = 0.0
    token_expires_at: float = 0.0
    session_expires_at: float = 0.0
    jti: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, f"{_PREFIX}.{body}".encode("ascii"), hashlib.sha256).digest())


def mint(claims: TokenClaims, secret: bytes) -> str:
    data = asdict(claims)
    data["capabilities"] = list(claims.capabilities)
    body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
    return f"{_PREFIX}.{body}.{_sign(secret, body)}"


def verify(token: str, secret: bytes, now: float) -> TokenClaims:
    """The claims of a genuine token that may still be used to connect at ``now``."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise TokenError("not a chat token")
    body, signature = parts[1], parts[2]
    if not hmac.compare_digest(signature, _sign(secret, body)):
        raise TokenError("chat token signature is invalid")
    try:
        data = json.loads(_unb64(body))
        data["capabilities"] = tuple(data["capabilities"])
        claims = TokenClaims(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise TokenError("chat token is malformed") from exc
    if now >= claims.token_expires_at:
        raise TokenError("chat token has expired")
    return claims
