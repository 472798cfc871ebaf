"""The account's rate quotas, one sliding window per operation, shared by every surface that counts.

IVS Chat limits each control-plane operation per account and region; DeleteMessage counts the API
call and the messaging DELETE_MESSAGE request together. One ``RateQuotas`` per sandbox is handed to
the control plane and to the messaging service, so both draw from the same windows.
"""

from __future__ import annotations

from ivs_widgets.sandbox.core.config import SandboxConfig
from ivs_widgets.sandbox.core.ratelimit import RateWindow


class RateQuotas:
    def __init__(self, config: SandboxConfig) -> None:
        self._windows = ({operation: RateWindow(limit) for operation, limit in config.quota_tps.items()}
                         if config.rate_quotas else {})

    def allow(self, operation: str) -> bool:
        """Count one call of ``operation`` now; False when its window is full (nothing counted)."""
        window = self._windows.get(operation)
        return window is None or window.allow()

    def limit(self, operation: str) -> int | None:
        window = self._windows.get(operation)
        return None if window is None else window.limit
