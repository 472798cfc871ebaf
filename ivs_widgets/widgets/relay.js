// The page's half of the stream relay: an hls.js loader that fetches through the widget's comm.
//
// Used when the stream is on the kernel's machine and this browser cannot reach it (Binder,
// JupyterHub, Colab, VS Code remote): the comm travels wherever the notebook does. The kernel
// fetches only URLs of the player's own origin and answers with the body as a binary buffer.
// Sent by the kernel only to pages that need it, like hls.js.

export function relayLoader(model, LoadStats) {
  const pending = new Map(); // request id -> the loader waiting for its answer
  // Answers go to every view of the model: each view's ids carry its own prefix.
  const prefix = Math.random().toString(36).slice(2);
  let count = 0;

  function onMessage(message, buffers) {
    if (message?.type !== "fetched") return;
    pending.get(message.id)?.answer(message, buffers[0]);
  }
  model.on("msg:custom", onMessage);

  class RelayLoader {
    constructor() {
      this.context = null;
      this.stats = new LoadStats();
      this.id = null;
      this.timer = null;
    }

    load(context, config, callbacks) {
      this.context = context;
      this.callbacks = callbacks;
      this.stats.loading.start = performance.now();
      this.id = `${prefix}-${++count}`;
      pending.set(this.id, this);
      // Requests wait while a cell runs (the kernel reads them when idle): hls.js's own
      // time limit for the whole load applies, and its retry policy after that.
      this.timer = setTimeout(() => {
        this.finish();
        callbacks.onTimeout(this.stats, context, null);
      }, config.timeout);
      model.send({ type: "fetch", id: this.id, url: context.url });
    }

    answer({ status, reason }, body) {
      const { context, callbacks, stats } = this;
      this.finish();
      stats.loading.first = stats.loading.end = performance.now();
      if (status < 200 || status >= 300) {
        callbacks.onError({ code: status, text: reason || `HTTP ${status}` }, context, null, stats);
        return;
      }
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      stats.loaded = stats.total = bytes.byteLength;
      stats.bwEstimate = (8000 * bytes.byteLength) / Math.max(1, stats.loading.end - stats.loading.start);
      let data;
      if (context.responseType === "arraybuffer") data = bytes.slice().buffer;
      else {
        data = new TextDecoder().decode(bytes);
        if (context.responseType === "json") data = JSON.parse(data);
      }
      callbacks.onProgress?.(stats, context, data, null);
      callbacks.onSuccess({ url: context.url, data, code: status }, stats, context, null);
    }

    finish() {
      clearTimeout(this.timer);
      pending.delete(this.id);
    }

    abort() {
      if (!this.context || !pending.has(this.id)) return;
      this.finish();
      this.stats.aborted = true;
      this.callbacks.onAbort?.(this.stats, this.context, null);
    }

    destroy() {
      this.finish();
      this.callbacks = this.context = null;
    }
  }

  return {
    Loader: RelayLoader,
    close() {
      model.off("msg:custom", onMessage);
      for (const loader of pending.values()) clearTimeout(loader.timer);
      pending.clear();
    },
  };
}
