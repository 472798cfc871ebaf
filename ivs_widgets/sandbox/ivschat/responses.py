"""The ``ivschat`` API over HTTP (rest-json): every operation of botocore's model, on the shared port.

Routing, SigV4, validation and the error format are the same for every API the sandbox serves
(:mod:`ivs_widgets.sandbox.core.operations`); errors carry the members the ``ivschat`` model names
(``reason``, ``fieldList``, ``resourceId`` …) as :class:`~ivs_widgets.sandbox.core.errors.ApiError` holds them.
"""

from __future__ import annotations

from ivs_widgets.sandbox.core.operations import Api
from ivs_widgets.sandbox.ivschat.models import ControlPlane


def api(control: ControlPlane) -> Api:
    """``ivschat``: each call through :meth:`ControlPlane.call`, which applies the rate quotas first."""
    return Api("ivschat", control, dispatch=control.call)
