"""On Colab the kit turns on the custom widget manager before anything shows; elsewhere it does nothing.

Colab cannot run here, so ``google.colab`` and its ``output`` module are stood in by plain modules in
``sys.modules``, which is all the kit (and anywidget) look at.
"""

from __future__ import annotations

import sys
import types

import pytest

from ivs_widgets.backend import connect
from ivs_widgets.colab import enable_custom_widgets
from ivs_widgets.widgets.join_form import JoinForm


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend to be Colab; the list records each call to ``enable_custom_widget_manager``."""
    calls: list[str] = []
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enabled")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    return calls


def test_connect_turns_it_on(colab: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVS_BACKEND", "aws")  # no sandbox to start; no AWS call is made
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    connect()
    assert colab == ["enabled"]


def test_a_join_form_turns_it_on_before_it_shows(colab: list[str]) -> None:
    form = JoinForm()
    assert colab == ["enabled"]
    form.close()


def test_elsewhere_nothing_happens() -> None:
    assert "google.colab" not in sys.modules
    enable_custom_widgets()  # no Colab module is imported, nothing fails
    assert "google.colab.output" not in sys.modules
