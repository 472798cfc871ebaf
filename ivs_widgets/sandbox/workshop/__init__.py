"""Workshop mode, the sandbox's own service (not an AWS one): room codes, attendee joins, presenter routes."""
