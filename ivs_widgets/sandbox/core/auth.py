"""SigV4 verification: the sandbox accepts what botocore signs with the sandbox's credentials.

The expected signature is computed with botocore's own signer over the request as received, so the
sandbox and every AWS SDK agree on the canonical form. Failures carry the codes AWS uses.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.errors import ApiError, access_denied

MAX_CLOCK_SKEW = timedelta(minutes=5)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


def signing_service(headers: Mapping[str, str]) -> str | None:
    """The service a request's SigV4 credential scope names (``ivschat``, ``ivs`` …), if it has one."""
    match = _AUTH.fullmatch(headers.get("Authorization", "").strip())
    return match["service"] if match else None


def verify(config: SandboxConfig, service: str, method: str, uri: str, headers: Mapping[str, str], body: bytes,
           now: datetime | None = None) -> None:
    """Raise the error AWS would give for a request not signed for ``service`` with the sandbox's credentials."""
    header = headers.get("Authorization")
    if not header:
        raise access_denied("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.fullmatch(header.strip())
    if not match:
        raise access_denied("IncompleteSignatureException",
                            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'.")
    if match["key"] != config.access_key_id:
        raise access_denied("UnrecognizedClientException", "The security token included in the request is invalid.")
    if match["service"] != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.")
    if match["region"] != config.region:
        raise _invalid(f"Credential should be scoped to a valid region, not '{match['region']}'.")
    stamp = headers.get("X-Amz-Date", "")
    try:
        signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise access_denied("IncompleteSignatureException", "Missing or malformed X-Amz-Date header.") from None
    now = now or datetime.now(UTC)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise _invalid(f"Signature expired: {stamp} is now earlier or later than the 5 minute window "
                       f"around {now.strftime(SIGV4_TIMESTAMP)}.")
    signed = match["signed"].split(";")
    request = AWSRequest(method=method, url=f"http://{headers.get('Host', '')}{uri}",
                         headers={name: headers.get(name, "") for name in signed}, data=body)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(config.access_key_id, config.secret_access_key), service, config.region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise _invalid("The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method. "
                       "Consult the service documentation for details.")


def _invalid(message: str) -> ApiError:
    return access_denied("InvalidSignatureException", message)
