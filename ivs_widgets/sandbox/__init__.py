"""A local Amazon IVS Chat and Amazon IVS: the ``ivschat`` and ``ivs`` control planes and the messaging
WebSocket endpoint.

One folder per service, its model apart from its routes (as moto does): ``ivschat/``, ``ivs/``,
``messaging/``, ``logs/``, ``workshop/`` (the sandbox's own, not AWS's) and ``stream/``; ``core/``
holds what they share (settings, state, tokens, SigV4, botocore-model validation, routing by the
models, the rest-json answer format). ``server.py`` wires them. ``Sandbox`` and ``SandboxConfig`` are
imported on first use, so importing one service does not start the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivs_widgets.lazy import exports

if TYPE_CHECKING:
    from ivs_widgets.sandbox.core.config import SandboxConfig
    from ivs_widgets.sandbox.server import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]
_HOMES = {"Sandbox": "ivs_widgets.sandbox.server", "SandboxConfig": "ivs_widgets.sandbox.core.config"}


__getattr__, __dir__ = exports(globals(), _HOMES)
