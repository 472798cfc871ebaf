// ChatPanel front end (anywidget ESM, no imports).
//
// Every string that came from the chat (content, display names, user ids, event names and
// attributes) is untrusted: it reaches the DOM only through textContent. Nothing here uses
// innerHTML, insertAdjacentHTML or puts chat text into an attribute.
//
// The kernel sends the capped history as one synced trait, at most every ~100 ms; render() diffs
// it against the rows on screen by id, so each batch costs one DOM pass, not one per message.

const NEAR_BOTTOM_PX = 40;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// One formatter for every row: toLocaleTimeString builds a new one per call, which shows at 100 msg/s.
const TIME = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function clock(iso) {
  // SendTime may carry nanoseconds; Date only needs milliseconds.
  const date = new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) ? String(iso) : TIME.format(date);
}

function codePoints(text) {
  return [...text].length;  // the service counts code points, not UTF-16 units
}

function render({ model, el: root }) {
  const rowsById = new Map();  // message/event id -> <li>
  const rowData = new WeakMap();  // <li> -> row, so buttons never read ids back from the DOM

  const panel = el("div", "ivs-chat");
  const header = el("div", "ivs-chat-header");
  const title = el("span", "ivs-chat-title");
  const state = el("span", "ivs-chat-state");
  const reconnect = el("button", "ivs-chat-reconnect", "Reconnect");
  reconnect.type = "button";
  header.append(title, state, reconnect);
  const error = el("div", "ivs-chat-error");
  error.setAttribute("role", "alert");
  const list = el("ol", "ivs-chat-list");
  list.setAttribute("aria-live", "polite");
  const jump = el("button", "ivs-chat-jump", "new messages ↓");
  jump.type = "button";
  const form = el("form", "ivs-chat-form");
  const input = el("input", "ivs-chat-input");
  input.type = "text";
  input.placeholder = "Say something…";
  input.setAttribute("aria-label", "Chat message");
  input.setAttribute("data-lm-suppress-shortcuts", "true");  // typing must not trigger JupyterLab shortcuts
  const counter = el("span", "ivs-chat-counter");
  const send = el("button", "ivs-chat-send", "Send");
  send.type = "submit";
  form.append(input, counter, send);
  panel.append(header, error, list, jump, form);
  root.append(panel);

  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  const toBottom = () => { list.scrollTop = list.scrollHeight; jump.hidden = true; };

  function tools(row) {
    const box = el("span", "ivs-chat-tools");
    if (row.kind !== "message") return box;
    if (model.get("can_delete")) {
      const del = el("button", "ivs-chat-delete", "Delete");
      del.type = "button";
      del.title = "Delete this message for everyone";
      box.append(del);
    }
    if (model.get("can_disconnect")) {
      const kick = el("button", "ivs-chat-disconnect", "Disconnect user");
      kick.type = "button";
      kick.title = "Disconnect this user from the room";
      box.append(kick);
    }
    return box;
  }

  function rowElement(row) {
    const li = el("li", `ivs-chat-row ivs-chat-${row.kind === "message" ? "message" : row.kind === "event" ? "event" : "notice"}`);
    li.append(el("time", "ivs-chat-time", clock(row.time)));
    if (row.kind === "message") {
      li.append(el("span", "ivs-chat-name", row.name), el("span", "ivs-chat-text", row.text), tools(row));
    } else if (row.kind === "event") {
      li.append(el("span", "ivs-chat-event-name", row.event));
      for (const [key, value] of Object.entries(row.attrs || {})) {
        const pair = el("span", "ivs-chat-attr");
        pair.append(el("span", "ivs-chat-attr-key", key), el("span", "ivs-chat-attr-value", value));
        li.append(pair);
      }
    } else {
      li.append(el("span", "ivs-chat-text", row.text));
    }
    rowData.set(li, row);
    return li;
  }

  function renderHistory() {
    const rows = model.get("history") || [];
    const follow = nearBottom();
    const keep = new Set(rows.map((row) => row.id));
    for (const [id, li] of rowsById) {
      if (!keep.has(id)) { li.remove(); rowsById.delete(id); }
    }
    const fresh = document.createDocumentFragment();
    let added = 0;
    for (const row of rows) {
      if (rowsById.has(row.id)) continue;
      const li = rowElement(row);
      rowsById.set(row.id, li);
      fresh.append(li);
      added += 1;
    }
    list.append(fresh);  // history only grows at its end, so new rows go last
    if (follow) toBottom(); else if (added) jump.hidden = false;
  }

  function renderStatus() {
    const connection = model.get("connection_state");
    state.textContent = model.get("status") || connection;
    const known = ["connected", "connecting"].includes(connection) ? connection : "disconnected";
    state.className = `ivs-chat-state ivs-chat-state-${known}`;
    reconnect.hidden = connection !== "disconnected";
    const canSend = model.get("can_send");
    input.disabled = !canSend || connection !== "connected";
    send.disabled = input.disabled;
    input.placeholder = canSend ? "Say something…" : "Read-only: this token cannot send messages";
  }

  function renderError() {
    const text = model.get("error");
    error.textContent = text;
    error.hidden = !text;
  }

  function renderCounter() {
    const limit = model.get("max_length");
    input.maxLength = limit;  // counts UTF-16 units: stricter than the service for emoji, never looser
    const used = codePoints(input.value);
    counter.textContent = `${used}/${limit}`;
    counter.classList.toggle("ivs-chat-counter-full", used >= limit);
  }

  function renderTitle() {
    title.textContent = model.get("title");
  }

  function onSubmit(event) {
    event.preventDefault();
    const content = input.value;
    if (!content.trim() || input.disabled) return;
    // Reaches Python only when the kernel is idle: a busy cell delays sending, not receiving.
    model.send({ action: "send", content });
    input.value = "";
    renderCounter();
  }

  function onListClick(event) {
    const button = event.target.closest("button");
    const row = button && rowData.get(button.closest("li"));
    if (!row) return;
    if (button.classList.contains("ivs-chat-delete")) model.send({ action: "delete", id: row.id });
    if (button.classList.contains("ivs-chat-disconnect")) model.send({ action: "disconnect", user_id: row.user });
  }

  const onKeydown = (event) => event.stopPropagation();  // keep Enter/shortcuts inside the panel
  const onScroll = () => { if (nearBottom()) jump.hidden = true; };
  const onReconnect = () => model.send({ action: "connect" });

  form.addEventListener("submit", onSubmit);
  input.addEventListener("input", renderCounter);
  input.addEventListener("keydown", onKeydown);
  list.addEventListener("click", onListClick);
  list.addEventListener("scroll", onScroll);
  jump.addEventListener("click", toBottom);
  reconnect.addEventListener("click", onReconnect);

  const listeners = [
    ["change:history", renderHistory],
    ["change:connection_state change:status", renderStatus],
    ["change:error", renderError],
    ["change:max_length", renderCounter],
    ["change:title", renderTitle],
  ];
  for (const [events, handler] of listeners) model.on(events, handler);

  renderTitle();
  renderStatus();
  renderError();
  renderCounter();
  jump.hidden = true;
  renderHistory();
  requestAnimationFrame(toBottom);  // the list has a height only once it is in the page

  return () => {
    for (const [events, handler] of listeners) model.off(events, handler);
  };
}

export default { render };
