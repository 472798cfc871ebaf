"""Notebook output helpers: responses readable, tokens never shown whole."""

from __future__ import annotations

from typing import Any

import pytest

from ivs_widgets.pretty import show


def test_show_prints_json_without_metadata_and_masks_the_token(ivschat: Any, room: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    response = ivschat.create_chat_token(roomIdentifier=room["arn"], userId="alice")
    show(response)
    out = capsys.readouterr().out
    assert "ResponseMetadata" not in out
    assert response["token"] not in out and response["token"][:8] in out
    assert f"({len(response['token'])} characters)" in out
    assert response["tokenExpirationTime"].isoformat(timespec="milliseconds") in out
