"""``SeedChatDemo``: the seed's browser half, run for real in the learner's browser.

The blog post's page opens ``new WebSocket(endpoint, token)`` itself, reads each frame with
``JSON.parse``, sends ``{"action": "SEND_MESSAGE", "content": …, "attributes": {"username": …}}`` and
shows ``data.Attributes.username`` next to ``data.Content``. The chat panels keep their WebSocket in the
kernel; this widget runs the seed's logic in the page instead, with two lessons built in:

- it renders with ``textContent``: the seed's ``innerHTML`` with ``${data.Content}`` would turn a
  message into markup (see :func:`innerhtml_effects` for what it would build, without running it);
- next to the name the page *claims* (``attributes.username``, chosen by whoever sends), it shows the
  name the *token* vouches for (``Sender.Attributes``, set by your backend in CreateChatToken).

The page asks the kernel for a chat token whenever it (re)connects: the kernel plays "your backend",
and no token is ever stored in the notebook. Where the page cannot reach the sandbox (Binder,
JupyterHub, Colab, VS Code remote), the same page code chats through a WebSocket the kernel opens
for it (``websocket_relay.py``), chosen by the player's rule; ``route_in_use`` says which.
"""

from __future__ import annotations

import itertools
import logging
import ssl as ssl_module
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ivs_widgets.chat.room import ChatToken, TokenProvider
from ivs_widgets.widgets.esm import bundle
from ivs_widgets.widgets.websocket_relay import WebSocketRelay

log = logging.getLogger("ivs_widgets.widgets.seed_demo")

HERE = Path(__file__).parent
STATES = ("waiting for a token", "connecting", "open", "closed")


class SeedChatDemo(anywidget.AnyWidget):
    """``SeedChatDemo(messaging_url, token_provider, username="Ada")``: a chat page's WebSocket in the browser."""

    _esm = bundle(HERE / "seed_demo.js")
    _css = HERE / "seed_demo.css"

    endpoint = traitlets.Unicode("").tag(sync=True)
    #: What the page puts in ``attributes.username``: anyone can type anything here.
    username = traitlets.Unicode("").tag(sync=True)
    #: Set by the page: its WebSocket's state.
    state = traitlets.Enum(STATES, "waiting for a token", read_only=True).tag(sync=True)
    #: Set by the page: every MESSAGE its WebSocket received, as the page read it.
    received: traitlets.List[dict[str, Any]] = traitlets.List(read_only=True).tag(sync=True)
    route_in_use = traitlets.Unicode("", read_only=True, help="'direct', or 'relay' when the page's WebSocket is "
                                     "the kernel's (the browser cannot reach the endpoint)").tag(sync=True)

    def __init__(self, endpoint: str, token_provider: TokenProvider, *, username: str = "",
                 ssl: ssl_module.SSLContext | None = None, **kwargs: Any) -> None:
        self._relay = WebSocketRelay(lambda: self.endpoint, lambda content: self.send(content), ssl=ssl)
        super().__init__(endpoint=endpoint, username=username, **kwargs)  # after: close() needs the relay
        self._token_provider = token_provider
        self._sent = itertools.count(1)
        self._ended = False
        self.on_msg(self._on_page_message)

    def send_message(self, content: str) -> None:
        """Have the page send ``content`` on its own WebSocket, exactly as its Send button does."""
        self.send({"action": "send", "content": content, "n": next(self._sent)})

    def end(self) -> None:
        """Stop minting tokens for the page (a notebook's clean-up, before the backend stops): the page
        stays, with what it received. Its own WebSocket closes when the room or the sandbox goes; one the
        kernel relays for it closes now. A page that asks for a token afterwards (it asks when it is shown,
        answered only between cells) gets none."""
        self._ended = True
        self._relay.close()

    def close(self) -> None:
        """Remove the page; a WebSocket the kernel relays for it closes with it."""
        self._relay.close()
        super().close()

    def _on_page_message(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        if not isinstance(content, dict):
            log.info("SeedChatDemo: ignored a message from the page that is not an object")
        elif str(content.get("type", "")).startswith("ws-"):
            self._relay.handle(content)
        elif content.get("action") == "token" and self._ended:
            log.info("SeedChatDemo: the page asked for a token after end(); none is minted")
        elif content.get("action") == "token":
            token = self._token_provider()
            if not isinstance(token, ChatToken):
                raise TypeError("SeedChatDemo needs a synchronous token provider (backend.token_provider)")
            self.send({"action": "token", "token": token.token})

    def __repr__(self) -> str:
        relayed = ", relayed by the kernel" if self.route_in_use == "relay" else ""
        return f"<SeedChatDemo {self.state}{relayed}, {len(self.received)} received, as {self.username!r}>"


class _Effects(HTMLParser):
    """Collects what parsing a string as HTML would create; nothing is rendered or run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.effects: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.effects.append(f"a <{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.effects.append(f"  with an {name} handler: the browser would run {value!r} as your page")
            elif name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.effects.append(f"  with {name}={value!r}: a click would run it as your page")
        if tag in ("script", "iframe", "object", "embed", "style", "form", "meta", "link", "base"):
            self.effects.append(f"  (<{tag}> lets the sender change what your page loads, shows or runs)")


def innerhtml_effects(content: str) -> list[str]:
    """What ``element.innerHTML += `<div>${content}</div>``` would build from a chat message, in words.

    Plain text builds nothing but text; markup builds elements, and event-handler attributes or
    ``javascript:`` URLs in them are code the sender runs in every viewer's page. (``<script>`` put in
    with innerHTML does not run, but an ``<img onerror=…>`` does.) Parsed here, never rendered.
    """
    parser = _Effects()
    parser.feed(content)
    parser.close()
    return parser.effects or ["only text: nothing but characters on the screen"]
