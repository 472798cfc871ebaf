"""The messaging service: rooms and requests (``models``), the WebSocket endpoint (``endpoint``), the
fan-out (``fanout``, over ``websockets_internals``), review handlers and room activity."""
