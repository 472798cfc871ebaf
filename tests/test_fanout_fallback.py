"""The chat scenarios again, through the fan-out's fallback: ``websockets``' public ``broadcast``.

The fast fan-out uses a few ``websockets`` internals (:mod:`ivs_widgets.sandbox.messaging.websockets_internals`).
Here the internals are declared missing, as after a release that renamed one: the sandbox must say so
once and keep every chat behaviour, through the public API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from test_messaging_chat import (  # noqa: F401  (collected again here, with the fallback sandbox)
    test_absent_optional_fields_are_sent_empty_not_left_out,
    test_bad_input_gets_an_error_only_on_that_connection,
    test_bystander_sees_only_valid_messages_once_and_in_order,
    test_content_length_is_counted_in_code_points,
    test_every_message_gets_a_fresh_id_and_a_nanosecond_send_time,
    test_lowercase_keys_are_accepted,
    test_message_attributes_must_be_strings_within_1kb,
    test_message_reaches_everyone_in_the_room_including_the_sender,
    test_room_rate_limit_counts_every_sender,
    test_rooms_are_isolated,
    test_sending_without_the_capability_is_refused_with_403,
    test_update_room_limits_apply_at_once_to_connected_clients,
)
from test_messaging_moderation import (  # noqa: F401  (collected again here, with the fallback sandbox)
    test_control_plane_delete_message_reaches_live_connections,
    test_control_plane_disconnect_user_closes_that_users_connections,
    test_control_plane_send_event_reaches_live_connections,
    test_delete_message_is_announced_to_everyone,
    test_delete_message_needs_the_capability,
    test_delete_room_closes_its_connections_cleanly,
    test_disconnect_user_closes_every_connection_of_that_user_only,
    test_disconnect_user_needs_the_capability,
    test_moderation_requests_accept_the_lowercase_keys_of_third_party_clients,
    test_session_expiry_sends_error_401_then_closes_cleanly,
)

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.messaging import websockets_internals
from ivs_widgets.sandbox.messaging.fanout import BroadcastFanOut


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Sandbox]:
    """A sandbox started as if ``websockets`` had renamed one of the internals the fan-out uses."""
    connection, (methods, attributes) = next(iter(websockets_internals.REQUIRED.items()))
    monkeypatch.setitem(websockets_internals.REQUIRED, connection, (methods + ("renamed_in_a_later_release",),
                                                                    attributes))
    monkeypatch.setattr(websockets_internals, "_warned", False)
    with caplog.at_level(logging.WARNING, "ivs_widgets.sandbox.messaging"), Sandbox() as running:
        assert isinstance(running.messaging.fanout, BroadcastFanOut)
        warnings = [r.getMessage() for r in caplog.records if "falls back" in r.getMessage()]
        assert len(warnings) == 1 and "renamed_in_a_later_release" in warnings[0]
        yield running


def test_the_internals_this_websockets_release_has_are_all_found() -> None:
    """With the pinned release the fast fan-out runs: nothing is missing."""
    assert websockets_internals.missing() == []
