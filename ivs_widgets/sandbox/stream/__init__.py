"""The built-in clock-and-tone source: as a plain live HLS test stream the player panel plays without
AWS (``models``), and as an encoder publishing to a channel over RTMP (``feed``)."""
