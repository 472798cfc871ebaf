// ChatPanel front end (anywidget ESM, no imports).
//
// Every string that came from the chat (content, display names, user ids, event names and
// attributes) is untrusted: it reaches the DOM only as text (textContent, or strings passed to
// append(), which become Text nodes). Nothing here uses innerHTML or insertAdjacentHTML. The one
// attribute chat text can reach is a link's href, and only as an http(s) URL that `new URL()`
// accepted (see linkHref).
//
// The kernel sends the capped history as one synced trait, at most every ~100 ms; render() diffs
// it against the rows on screen by id, so each batch costs one DOM pass, not one per message.

const NEAR_BOTTOM_PX = 40;
// Consecutive messages from one sender share one name and avatar while they fall within this time
// of the run's first message, so a long monologue still shows who and when every few minutes.
const GROUP_WINDOW_MS = 5 * 60 * 1000;
// Avatar colours. White initials have a contrast ratio above 5:1 on each, and each stands apart
// from JupyterLab's light and dark backgrounds, so one palette serves both themes.
const PALETTE = ["#c62828", "#ad1457", "#7b1fa2", "#3949ab", "#1565c0", "#00796b", "#2e7d32", "#6d4c41"];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// One formatter for every row: toLocaleTimeString builds a new one per call, which shows at 100 msg/s.
const TIME = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
// On hover: the date and the time zone too, since a chat (or a prefilled history) can span days.
const FULL_TIME = new Intl.DateTimeFormat([], { dateStyle: "full", timeStyle: "long" });

function parseTime(iso) {
  // SendTime may carry nanoseconds; Date only needs milliseconds.
  return new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

function timeElement(iso) {
  const date = parseTime(iso);
  if (Number.isNaN(date.getTime())) return el("time", "ivs-chat-time", String(iso));
  const node = el("time", "ivs-chat-time", TIME.format(date));
  node.dateTime = date.toISOString();
  node.title = FULL_TIME.format(date);
  return node;
}

function codePoints(text) {
  return [...text].length;  // the service counts code points, not UTF-16 units
}

// FNV-1a, a fixed hash: a user id gets the same colour in every view, after every reload.
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function senderColour(userId) {
  return PALETTE[hash(String(userId)) % PALETTE.length];
}

const GRAPHEMES = new Intl.Segmenter();

// The first letter or digit with its combining marks, so "<b>Ada" shows "A", not "<"; failing
// that, the first visible character (a name of emoji). Upper case without locale rules, so every
// viewer sees the same initial.
function initial(name) {
  const letter = name.match(/[\p{L}\p{N}]\p{M}*/u);
  if (letter) return letter[0].toUpperCase();
  const visible = name.replace(/[\p{C}\p{Z}]/gu, "");  // controls, bidi overrides, spaces
  return visible ? GRAPHEMES.segment(visible).containing(0).segment : "?";
}

// An http(s) URL runs up to whitespace, a quote, an angle bracket or an invisible control or
// format character (a bidi override could disguise where the link leads).
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"\p{C}]+/giu;
const OPENING = { ")": "(", "]": "[", "}": "{" };

function count(text, char) {
  return text.split(char).length - 1;
}

function trimUrl(candidate) {
  // Punctuation that ends a sentence is not part of the URL, nor a bracket closing one opened
  // before it; a bracket the URL opened itself, as in ".../Foo_(bar)", stays.
  let url = candidate;
  while (/[.,;:!?'*)\]}]$/.test(url)) {
    const last = url.at(-1);
    if (OPENING[last] && count(url, OPENING[last]) >= count(url, last)) break;
    url = url.slice(0, -1);
  }
  return url;
}

function linkHref(text) {
  // Only http(s), checked on the parsed URL: never javascript:, data: or another scheme.
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function link(text, href) {
  const a = el("a", "ivs-chat-link", text);
  a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";  // the opened page gets no handle on this one and no referrer
  return a;
}

// Message text as Text nodes, each http(s) URL in it a link showing the URL as it was typed.
function messageText(text) {
  const node = el("span", "ivs-chat-text");
  let shown = 0;
  for (const match of text.matchAll(URL_CANDIDATE)) {
    const url = trimUrl(match[0]);
    const href = linkHref(url);
    if (!href) continue;
    node.append(text.slice(shown, match.index), link(url, href));
    shown = match.index + url.length;
  }
  node.append(text.slice(shown));
  return node;
}

function sameRun(head, row) {
  const gap = parseTime(row.time) - parseTime(head.time);
  return row.user === head.user && row.name === head.name && gap >= 0 && gap <= GROUP_WINDOW_MS;
}

function render({ model, el: root }) {
  const rowsById = new Map();  // message/event id -> <li>
  const rowData = new WeakMap();  // <li> -> row, so buttons never read ids back from the DOM
  const unread = new Set();  // ids of the rows that arrived while the reader was scrolled up

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

  function renderJump() {
    jump.hidden = unread.size === 0;
    jump.textContent = `${unread.size} new message${unread.size === 1 ? "" : "s"} ↓`;
  }

  function markRead() {
    unread.clear();
    renderJump();
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    markRead();
  }

  function tools() {
    const box = el("span", "ivs-chat-tools");
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

  function messageElement(row) {
    const li = el("li", "ivs-chat-row ivs-chat-message");
    li.style.setProperty("--ivs-chat-sender", senderColour(row.user));
    const avatar = el("span", "ivs-chat-avatar", initial(row.name));
    avatar.setAttribute("aria-hidden", "true");  // the name follows; a screen reader need not spell it
    const meta = el("span", "ivs-chat-meta");
    meta.append(timeElement(row.time), tools());
    // Every row gets avatar and name, even inside a run (CSS hides them there): when a deletion or
    // the history cap removes a run's first row, regroup() only has to move the class.
    li.append(avatar, el("span", "ivs-chat-name", row.name), meta, messageText(row.text));
    return li;
  }

  function rowElement(row) {
    if (row.kind === "message") return messageElement(row);
    const li = el("li", `ivs-chat-row ivs-chat-${row.kind === "event" ? "event" : "notice"}`);
    li.append(timeElement(row.time));
    if (row.kind === "event") {
      li.append(el("span", "ivs-chat-event-name", row.event));
      for (const [key, value] of Object.entries(row.attrs || {})) {
        const pair = el("span", "ivs-chat-attr");
        pair.append(el("span", "ivs-chat-attr-key", key), el("span", "ivs-chat-attr-value", value));
        li.append(pair);
      }
    } else {
      li.append(el("span", "ivs-chat-text", row.text));
    }
    return li;
  }

  // A message continues the run above it (same sender, see sameRun); events and notices end runs.
  function regroup() {
    let head = null;  // the first message of the current run
    for (const li of list.children) {
      const row = rowData.get(li);
      const continued = row.kind === "message" && head !== null && sameRun(head, row);
      li.classList.toggle("ivs-chat-continued", continued);
      if (!continued) head = row.kind === "message" ? row : null;
    }
  }

  function renderHistory() {
    const rows = model.get("history") || [];
    const follow = nearBottom();
    const keep = new Set(rows.map((row) => row.id));
    for (const [id, li] of rowsById) {
      if (!keep.has(id)) { li.remove(); rowsById.delete(id); unread.delete(id); }
    }
    // New rows go where the history has them: mostly at the end, but prefill() puts logged
    // messages before the live ones, and runs are grouped by what is adjacent on screen.
    let previous = null;
    for (const row of rows) {
      let li = rowsById.get(row.id);
      if (!li) {
        li = rowElement(row);
        rowData.set(li, row);
        rowsById.set(row.id, li);
        if (previous) previous.after(li); else list.prepend(li);
        if (!follow) unread.add(row.id);
      }
      previous = li;
    }
    regroup();
    if (follow) toBottom(); else renderJump();
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
    toBottom();  // the sender's own message arrives at the end: show it there
  }

  function onListClick(event) {
    const button = event.target.closest("button");
    const row = button && rowData.get(button.closest("li"));
    if (!row) return;
    if (button.classList.contains("ivs-chat-delete")) model.send({ action: "delete", id: row.id });
    if (button.classList.contains("ivs-chat-disconnect")) model.send({ action: "disconnect", user_id: row.user });
  }

  function onKeydown(event) {
    event.stopPropagation();  // keep Enter, Escape and shortcuts inside the panel
    if (event.key !== "Escape") return;
    input.value = "";
    renderCounter();
  }

  const onScroll = () => { if (unread.size && nearBottom()) markRead(); };
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
  renderJump();
  renderHistory();
  requestAnimationFrame(toBottom);  // the list has a height only once it is in the page

  return () => {
    for (const [events, handler] of listeners) model.off(events, handler);
  };
}

export default { render };
