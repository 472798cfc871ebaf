// The page's half of the seed demo's WebSocket relay: a WebSocket that the kernel opens for the page.
//
// Used when the messaging endpoint is on the kernel's machine and this browser cannot reach it
// (Binder, JupyterHub, Colab, VS Code remote; see route.js). It has what the seed's code uses of
// a browser WebSocket (the open, message, error and close events, as `on…` properties and as
// listeners; send(), close(), readyState, protocol), so that code reads the same either way.
// Every call travels over the widget's comm; the kernel (websocket_relay.py) holds the real
// socket, and relays only the demo's own endpoint, text frames only.

const STATES = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };

export function relayedWebSocket(model) {
  const sockets = new Map(); // socket id -> the RelayedWebSocket the kernel's answers are for
  // Answers go to every view of the model: each view's ids carry its own prefix.
  const prefix = Math.random().toString(36).slice(2);
  let count = 0;

  function onMessage(message) {
    if (typeof message?.type === "string" && message.type.startsWith("ws-")) sockets.get(message.id)?.receive(message);
  }
  model.on("msg:custom", onMessage);

  class RelayedWebSocket extends EventTarget {
    constructor(url, protocols = []) {
      super();
      Object.assign(this, { url, protocol: "", extensions: "", binaryType: "blob", bufferedAmount: 0,
        readyState: STATES.CONNECTING, onopen: null, onmessage: null, onerror: null, onclose: null });
      this.id = `${prefix}-${++count}`;
      sockets.set(this.id, this);
      model.send({ type: "ws-open", id: this.id, url, protocols: [protocols].flat() });
    }

    send(data) {
      if (this.readyState === STATES.CONNECTING) throw new DOMException("Still in CONNECTING state.", "InvalidStateError");
      if (typeof data !== "string") throw new TypeError("Relayed by the kernel: text frames only.");
      if (this.readyState === STATES.OPEN) model.send({ type: "ws-send", id: this.id, data });
    }

    close(code, reason = "") {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new DOMException(`The close code must be 1000 or in 3000-4999, not ${code}.`, "InvalidAccessError");
      }
      if (this.readyState >= STATES.CLOSING) return;
      this.readyState = STATES.CLOSING;
      model.send({ type: "ws-close", id: this.id, code: code ?? 1000, reason });
    }

    receive(message) {
      if (message.type === "ws-open") {
        Object.assign(this, { readyState: STATES.OPEN, protocol: message.protocol });
        this.fire(new Event("open"));
      } else if (message.type === "ws-message" && this.readyState === STATES.OPEN) {
        this.fire(new MessageEvent("message", { data: message.data, origin: new URL(this.url).origin }));
      } else if (message.type === "ws-error") {
        // Unlike a browser's (which says nothing), the error says why: the kernel knows.
        this.fire(new ErrorEvent("error", { message: message.message }));
      } else if (message.type === "ws-close") {
        this.readyState = STATES.CLOSED;
        sockets.delete(this.id);
        const { code, reason, wasClean } = message;
        this.fire(new CloseEvent("close", { code, reason, wasClean }));
      }
    }

    fire(event) {
      this[`on${event.type}`]?.(event);
      this.dispatchEvent(event);
    }
  }
  Object.assign(RelayedWebSocket, STATES);

  return {
    WebSocket: RelayedWebSocket,
    close() {
      model.off("msg:custom", onMessage);
      sockets.clear();
    },
  };
}
