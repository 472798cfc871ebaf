"""What the ``ivs`` tests share: ARNs of this sandbox's account and the check of an ``ivs`` error."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ivs_widgets.protocol import facts as c

PREFIX = f"arn:aws:ivs:{c.SANDBOX_REGION}:{c.SANDBOX_ACCOUNT_ID}"
MISSING_CHANNEL = f"{PREFIX}:channel/AbCdEfGhIjKl"


def ivs_error(excinfo: pytest.ExceptionInfo[ClientError], code: str, status: int) -> dict[str, Any]:
    """The parsed error, after checking its name, status and the model's ``exceptionMessage`` member."""
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["exceptionMessage"] == response["Error"]["Message"] != ""
    return response
