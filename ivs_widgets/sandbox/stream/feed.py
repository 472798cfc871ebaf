"""The built-in source as an encoder: ffmpeg's clock-and-tone test card pushed over RTMP to a channel,
for learners and tests without OBS (``Sandbox.go_live``, ``ivs-sandbox --go-live``).

The encoder lives in :mod:`ivs_widgets.test_card`, neutral ground: on AWS the client side pushes the
same card to a real channel (``Backend.go_live``) without loading the sandbox."""

from __future__ import annotations

from ivs_widgets.test_card import TestCardFeed as TestCardFeed
