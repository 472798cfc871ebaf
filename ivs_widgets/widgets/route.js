// Where the page gets something the kernel handed it: one rule for every widget that connects itself.
//
// On Binder, JupyterHub, Colab or VS Code remote the browser reaches the Jupyter server and nothing
// else of the kernel's machine: a loopback URL (the sandbox's stream or messaging endpoint) names
// the viewer's own computer there, so the widget goes through its comm and the kernel ("relay").
// Any other URL (Amazon IVS: https://…m3u8, wss://edge.ivschat…) is reached directly. A page that
// is itself served from loopback may be on the kernel's machine, or behind a tunnel (SSH, VS Code
// port forwarding) that forwards only Jupyter's port: it tries directly first ("try") and relays
// only if that fails within PROBE_TIMEOUT_MS. A page from any other origin never tries: recent
// Chrome would ask the viewer for access to their local network, and it would reach whatever the
// viewer runs on that port.

export const PROBE_TIMEOUT_MS = 1_500; // a direct attempt on loopback succeeds in milliseconds or is refused
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

function onLoopback(url) {
  try {
    return LOOPBACK.test(new URL(url, location.href).hostname);
  } catch {
    return false;
  }
}

/** "direct", "relay", or "try" (directly, and relay if that fails) for a URL the kernel handed the page. */
export function firstRoute(url) {
  if (!onLoopback(url)) return "direct";
  return onLoopback(location.href) ? "try" : "relay";
}
