"""The live HLS test stream (clock and tone) the player panel plays without AWS."""
