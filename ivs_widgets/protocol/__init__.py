"""The wire vocabulary both sides share, and nothing that does I/O.

- :mod:`~ivs_widgets.protocol.frames`: every messaging frame and request, and their JSON.
- :mod:`~ivs_widgets.protocol.facts`: the service's limits, defaults and quotas (one constant each).
- :mod:`~ivs_widgets.protocol.rules`: one function per validation rule, used by client and sandbox.
- :mod:`~ivs_widgets.protocol.formats`: ids, ARNs, timestamps and certificate fingerprints.
- :mod:`~ivs_widgets.protocol.chat_logs`: the chat-log record format and where services store it.
- :mod:`~ivs_widgets.protocol.errors`: :class:`IvsWidgetsError`, the base of every error.

The sandbox (server side) and the client (``chat``, ``widgets``, ``backend``) both import from here
and never from each other.
"""
