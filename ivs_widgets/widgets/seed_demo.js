// SeedChatDemo front end: the seed's chat page logic, running in this browser (anywidget ESM).
//
// What the seed does, step by step: ask "your backend" for a chat token, open
// `new WebSocket(endpoint, token)` from the page, `JSON.parse` every frame, and send the lowercase
// `{"action": "SEND_MESSAGE", "content", "attributes": {"username"}}` payload. Unlike the seed, every
// string from the chat reaches the DOM through textContent only: never innerHTML.
//
// Where this browser cannot reach the sandbox (Binder, JupyterHub, Colab, VS Code remote: the
// endpoint is on the kernel's loopback), the socket is a stand-in with the same events and methods
// that the kernel opens for the page (websocket_relay.js), chosen by the player's rule (route.js).

import { firstRoute, PROBE_TIMEOUT_MS } from "./route.js";
import { relayedWebSocket } from "./websocket_relay.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render({ model, el: root }) {
  const box = el("div", "ivs-seed");
  const status = el("div", "ivs-seed-status");
  const list = el("ol", "ivs-seed-list");
  const form = el("form", "ivs-seed-form");
  const input = el("input", "ivs-seed-input");
  input.type = "text";
  input.placeholder = "Say something from this page…";
  input.setAttribute("aria-label", "Message sent by the page's own WebSocket");
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  const send = el("button", "ivs-seed-send", "Send");
  send.type = "submit";
  form.append(input, send);
  box.append(status, list, form);
  root.append(box);

  let socket = null;
  let closedByView = false;
  let route = firstRoute(model.get("endpoint")); // "direct", "relay", or "try" directly, relayed if that fails
  let relay = null; // the relayed WebSocket class of this view, made on first use
  let problem = ""; // why the socket failed, when the kernel knows

  function setState(state, detail = "") {
    const relayed = route === "relay" ? " · relayed by the kernel" : "";
    status.textContent = `WebSocket from this page: ${state}${detail ? `: ${detail}` : ""} (${model.get("endpoint")})`
      + relayed;
    model.set("state", state);
    if (state === "open") {
      box.dataset.route = route;
      model.set("route_in_use", route);
    }
    model.save_changes();
  }

  function askForToken() {
    model.send({ action: "token" }); // "your backend" mints one (processed when the kernel is idle)
  }

  function show(data) {
    // The seed shows data.Attributes.username: whatever the sender's page put there.
    const claimed = (data.Attributes && data.Attributes.username) || "(no username)";
    const sender = data.Sender || {};
    const vouched = (sender.Attributes && sender.Attributes.displayName) || sender.UserId || "?";
    const li = el("li", "ivs-seed-row");
    li.append(el("span", "ivs-seed-claimed", claimed), el("span", "ivs-seed-vouched", `token: ${vouched}`),
      el("span", "ivs-seed-text", data.Content));
    list.append(li);
    list.scrollTop = list.scrollHeight;
    model.set("received", [...model.get("received"), {
      id: data.Id, content: data.Content, username: claimed, user_id: sender.UserId || "",
      display_name: (sender.Attributes && sender.Attributes.displayName) || "",
    }]);
    model.save_changes();
  }

  function connect(token) {
    setState("connecting");
    const Socket = route === "relay" ? (relay ??= relayedWebSocket(model)).WebSocket : WebSocket;
    socket = new Socket(model.get("endpoint"), token);  // the token is the only subprotocol
    if (route === "try") giveUpAfter(PROBE_TIMEOUT_MS, socket);
    socket.onopen = () => {
      if (route === "try") route = "direct";
      setState("open");
    };
    socket.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.Type === "MESSAGE") show(data);
    };
    socket.onerror = (event) => { problem = event.message || ""; }; // a browser's own socket says nothing
    socket.onclose = (event) => {
      if (closedByView) return;
      if (route === "try") { // this browser cannot reach the sandbox: through the kernel, with a fresh token
        route = "relay";
        askForToken();
        return;
      }
      setState("closed", problem || event.reason || (event.code === 1006 ? "the connection failed" : ""));
    };
  }

  function giveUpAfter(ms, attempt) {
    setTimeout(() => { if (attempt.readyState === WebSocket.CONNECTING) attempt.close(); }, ms);
  }

  function sendFromPage(content) {
    if (!socket || socket.readyState !== WebSocket.OPEN || !content.trim()) return;
    const payload = { action: "SEND_MESSAGE", content, attributes: { username: model.get("username") } };
    socket.send(JSON.stringify(payload));
  }

  function onSubmit(event) {
    event.preventDefault();
    sendFromPage(input.value);
    input.value = "";
  }

  function onCustom(message) {
    if (message.action === "token") connect(message.token);
    if (message.action === "send") sendFromPage(message.content);
  }

  form.addEventListener("submit", onSubmit);
  input.addEventListener("keydown", (event) => event.stopPropagation());
  model.on("msg:custom", onCustom);
  setState("waiting for a token");
  askForToken();

  return () => {
    closedByView = true;
    model.off("msg:custom", onCustom);
    if (socket) socket.close();
    relay?.close();
  };
}

export default { render };
