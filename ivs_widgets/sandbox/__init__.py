"""A local Amazon IVS Chat: the ``ivschat`` control plane and the messaging WebSocket endpoint."""

from ivs_widgets.sandbox.config import SandboxConfig
from ivs_widgets.sandbox.server import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]
