// PlayerPanel's view: a <video> with the browser's own controls, an error box and a status line.
//
// HLS engine: the browser's own HLS support wherever video.canPlayType says it has one (Safari,
// recent Chrome and Edge, mobile browsers); otherwise hls.js. We chose hls.js over the Amazon IVS
// Player SDK because the fallback must play the sandbox's local stream with nothing fetched from
// outside: hls.js plays any standard HLS stream, IVS channels included, and is one ES module
// vendored from npm (Apache-2.0) that the kernel sends only to browsers that need it. The IVS
// Player SDK loads from its CDN with WebAssembly workers and is built for IVS channels; what we
// give up is its IVS-specific low-latency tuning.
//
// Timed metadata: each ID3 text frame (what PutMetadata puts into an IVS stream) reaches Python as a
// cue when playback reaches it, not when its segment is parsed: hls.js hands over the tag's bytes
// and time, and the cue waits on a metadata text track of this view until the video gets there.
// Safari's own engine decodes ID3 itself into its in-band metadata track. Chrome's own engine
// exposes no timed metadata, so "auto" uses it only where the browser surfaces it (DataCue).
//
// Route (route.js, the rule the seed demo's WebSocket follows too): a stream on the kernel's machine
// (a loopback URL, like the sandbox's) is fetched by the kernel and relayed over the widget's comm
// (relay.js) unless this browser can reach it itself; every other URL (an IVS channel's https
// playback URL) loads directly.

import { firstRoute, PROBE_TIMEOUT_MS } from "./route.js";

const REPORT_INTERVAL_MS = 500; // position and live_latency reach Python at most twice a second
const MODULE_LOAD_TIMEOUT_MS = 30_000;
const HLS_MIME = "application/vnd.apple.mpegurl";
const HAVE_METADATA = 1;
// Where a cue comes from, as the IVS Player names metadata put with the IVS API (PutMetadata).
const CUE_OWNER = "metadata.live-video.net";
const LABELS = {
  idle: "No stream", loading: "Loading…", playing: "Playing", paused: "Paused", ended: "Ended",
  error: "Cannot play",
};
const MEDIA_ERRORS = {
  1: "loading was aborted",
  2: "a network error stopped the download",
  3: "the video could not be decoded",
  4: "the stream could not be loaded (wrong URL, stream offline, or a format this browser cannot play)",
};

const modules = new Map(); // name -> one import per page, asked of the kernel by the first panel that needs it

function loadModule(model, name) {
  if (!modules.has(name)) {
    const loading = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        model.off("msg:custom", onMessage);
        reject(new Error("the kernel did not send it (is the kernel running?)"));
      }, MODULE_LOAD_TIMEOUT_MS);
      function onMessage(message, buffers) {
        if (message?.type !== "module" || message.name !== name) return;
        clearTimeout(timer);
        model.off("msg:custom", onMessage);
        const url = URL.createObjectURL(new Blob([buffers[0]], { type: "text/javascript" }));
        import(url).then(resolve, reject).finally(() => URL.revokeObjectURL(url));
      }
      model.on("msg:custom", onMessage);
      model.send({ type: "load-module", name });
    }).catch((error) => {
      modules.delete(name); // let a later panel or a retry ask again
      throw error;
    });
    modules.set(name, loading);
  }
  return modules.get(name);
}

/** Whether this browser fetches the playlist itself: on loopback, is the kernel's machine this one? */
async function reachable(url) {
  try {
    const response = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    return response.ok && (await response.text()).startsWith("#EXTM3U");
  } catch {
    return false;
  }
}

async function chooseRoute(url) {
  const route = firstRoute(url);
  if (route !== "try") return route;
  return (await reachable(url)) ? "direct" : "relay";
}

const round = (seconds) => Math.round(seconds * 1000) / 1000;

function clock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Whether the browser's own HLS engine can hand timed metadata to the page (Safari: DataCue). */
function nativeSurfacesMetadata() {
  return "DataCue" in window || "WebKitDataCue" in window;
}

function describeHlsError(data) {
  const status = data.response?.code ? `, HTTP ${data.response.code}` : "";
  return `Cannot play this stream: ${data.details}${status}.`;
}

function render({ model, el }) {
  el.classList.add("ivs-player");
  const video = Object.assign(document.createElement("video"), { controls: true, playsInline: true });
  video.setAttribute("aria-label", "Live video");
  const box = document.createElement("div");
  box.className = "ivs-player-message";
  box.setAttribute("role", "alert");
  box.hidden = true;
  const boxText = document.createElement("span");
  const retry = Object.assign(document.createElement("button"), { type: "button", textContent: "Retry" });
  box.append(boxText, retry);
  const status = document.createElement("div");
  status.className = "ivs-player-status";
  const screen = document.createElement("div");
  screen.className = "ivs-player-screen";
  screen.append(video, box);
  el.append(screen, status);

  let hls = null;
  let relay = null; // this view's relay loader, made on first use
  let id3 = null; // the ID3 module, loaded with hls.js
  let cueTrack = null; // this view's own metadata track: hls.js's cues wait on it for the video
  const viewId = Math.random().toString(36).slice(2); // the kernel takes cues from one view only
  const reportedCues = new WeakSet(); // native in-band cues already sent
  let generation = 0; // bumps on every (re)load so a slow hls.js load cannot attach a stale URL
  let lastReport = 0;

  function report(changes) {
    let changed = false;
    for (const [key, value] of Object.entries(changes)) {
      if (model.get(key) !== value) {
        model.set(key, value);
        changed = true;
      }
    }
    if (changed) model.save_changes();
    showStatus();
  }

  function latency() {
    if (hls) {
      return hls.latestLevelDetails?.live && Number.isFinite(hls.latency) ? round(hls.latency) : null;
    }
    if (video.duration !== Infinity) return null; // not live
    // Chrome's own HLS player gives live streams no seekable range; it buffers up to the end of
    // the playlist, so the end of its buffer stands in for the live edge.
    const edge = video.seekable.length ? video.seekable : video.buffered;
    if (edge.length === 0) return null;
    return round(Math.max(0, edge.end(edge.length - 1) - video.currentTime));
  }

  function reportProgress(force) {
    const now = performance.now();
    if (!force && now - lastReport < REPORT_INTERVAL_MS) return;
    lastReport = now;
    report({ position: round(video.currentTime), live_latency: latency() });
  }

  function showStatus() {
    const state = model.get("state");
    el.dataset.state = state;
    el.dataset.engine = model.get("engine_in_use");
    el.dataset.route = model.get("route_in_use");
    const parts = [LABELS[state]];
    if (state === "playing" || state === "paused") parts.push(clock(video.currentTime));
    const behind = latency();
    if (behind !== null) parts.push(`${behind.toFixed(1)} s behind live`);
    if (model.get("engine_in_use")) parts.push(model.get("engine_in_use"));
    if (model.get("route_in_use") === "relay") parts.push("relayed by the kernel");
    status.textContent = parts.join(" · ");
  }

  function showMessage(text, canRetry) {
    boxText.textContent = text;
    retry.hidden = !canRetry;
    box.hidden = false;
  }

  function fail(text) {
    report({ state: "error", error: text });
    showMessage(text, true);
  }

  function startPlayback() {
    video.play()?.catch((error) => {
      if (error.name === "NotAllowedError") {
        report({ playing: false });
        showMessage("The browser blocked playback with sound until you interact with the page: "
          + "press play, or mute the player.", false);
      } // AbortError: a newer load replaced this one before it started; nothing to report.
    });
  }

  /** The date of stream position ``time`` by the stream's PROGRAM-DATE-TIME, or null. */
  function programDateTime(time) {
    let ms = NaN;
    if (hls) ms = (hls.playingDate?.getTime() ?? NaN) - (video.currentTime - time) * 1000;
    else if (video.getStartDate) ms = video.getStartDate().getTime() + time * 1000;
    return Number.isFinite(ms) ? new Date(Math.round(ms)).toISOString() : null;
  }

  function reportCue({ text, description }, startTime) {
    const cue = {
      type: "TextMetadataCue", text, description, owner: CUE_OWNER, startTime: round(startTime),
      endTime: round(startTime), programDateTime: programDateTime(startTime),
    };
    model.send({ type: "cue", view: viewId, cue });
  }

  /** hls.js parsed ID3 tags: each text frame waits on this view's track until playback reaches it. */
  function onMetadataParsed(_event, { samples }) {
    cueTrack ??= video.addTextTrack("metadata", "ivs-widgets timed metadata");
    cueTrack.mode = "hidden";
    for (const sample of samples) {
      for (const frame of id3.id3TextFrames(sample.data)) {
        const known = [...cueTrack.cues].some((c) => c.startTime === sample.pts && c.frame.text === frame.text);
        if (known) continue; // a segment loaded again
        const cue = new VTTCue(sample.pts, sample.pts, "");
        cue.frame = frame;
        cue.addEventListener("enter", () => reportCue(frame, cue.startTime));
        cueTrack.addCue(cue);
      }
    }
  }

  /** Safari's own engine: its in-band metadata track holds the decoded ID3 frames. */
  function onNativeTrack({ track }) {
    if (track.kind !== "metadata" || track === cueTrack || hls) return;
    track.mode = "hidden";
    track.addEventListener("cuechange", () => {
      for (const cue of track.activeCues ?? []) {
        if (reportedCues.has(cue) || cue.value?.key !== "TXXX" || typeof cue.value.data !== "string") continue;
        reportedCues.add(cue);
        reportCue({ text: cue.value.data, description: String(cue.value.info ?? "") }, cue.startTime);
      }
    });
  }

  function detach() {
    for (const cue of [...(cueTrack?.cues ?? [])]) cueTrack.removeCue(cue);
    if (hls) {
      hls.destroy();
      hls = null;
    }
    video.removeAttribute("src");
    video.load();
  }

  async function attach() {
    const current = ++generation;
    detach();
    box.hidden = true;
    const url = model.get("url");
    if (!url) {
      report({ state: "idle", error: "", engine_in_use: "", route_in_use: "", position: 0, live_latency: null });
      return;
    }
    report({ state: "loading", error: "", position: 0, live_latency: null });
    const route = await chooseRoute(url);
    if (current !== generation) return;
    report({ route_in_use: route });
    const wanted = model.get("engine");
    const native = video.canPlayType(HLS_MIME) !== "";
    const nativeFirst = native && (nativeSurfacesMetadata() || !window.MediaSource);
    if (route === "relay" && wanted === "native") {
      return fail("This stream is on the kernel's machine, which this browser cannot reach: only hls.js can play "
        + "it through the kernel. Use engine 'auto' or 'hls.js'.");
    }
    if (route === "direct" && (wanted === "native" || (wanted === "auto" && nativeFirst))) {
      if (!native) return fail("This browser cannot play HLS by itself: use engine 'auto' or 'hls.js'.");
      report({ engine_in_use: "native" });
      video.src = url;
    } else {
      let Hls;
      try {
        const [module, id3Module] = await Promise.all([loadModule(model, "hls.js"), loadModule(model, "id3")]);
        Hls = module.default;
        id3 = id3Module;
        if (route === "relay") relay ??= (await loadModule(model, "relay")).relayLoader(model, module.LoadStats);
      } catch (error) {
        if (current === generation) fail(`The HLS player (hls.js) could not be loaded: ${error.message}.`);
        return;
      }
      if (current !== generation) return;
      if (!Hls.isSupported()) {
        return fail("This browser can play HLS neither by itself nor with hls.js (no Media Source Extensions).");
      }
      report({ engine_in_use: "hls.js" });
      // hls.js's own metadata track is off: this view keeps its own (hls.js 1.7 loses the first cue
      // of its track, which it backs with a <track> element that resets its cues when it loads).
      const config = { enableEmsgMetadataCues: false, enableID3MetadataCues: false };
      hls = new Hls(route === "relay" ? { ...config, loader: relay.Loader } : config);
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal) fail(describeHlsError(data));
      });
      hls.on(Hls.Events.FRAG_PARSING_METADATA, onMetadataParsed);
      hls.loadSource(url);
      hls.attachMedia(video);
    }
    if (model.get("playing")) startPlayback();
  }

  const videoEvents = {
    play: () => report({ playing: true }),
    playing: () => {
      box.hidden = true;
      report({ state: "playing", playing: true, error: "" });
    },
    // A pause without metadata comes from (re)loading, not from the viewer: keep `playing` as is.
    pause: () => {
      if (video.readyState >= HAVE_METADATA && !video.ended) report({ state: "paused", playing: false });
      reportProgress(true);
    },
    waiting: () => report({ state: "loading" }),
    ended: () => report({ state: "ended", playing: false }),
    error: () => {
      if (hls || !video.error) return; // hls.js reports its own errors, with more detail
      fail(`Cannot play this stream: ${MEDIA_ERRORS[video.error.code] ?? video.error.message}.`);
    },
    volumechange: () => report({ muted: video.muted, volume: video.volume }),
    timeupdate: () => reportProgress(false),
  };
  for (const [type, handler] of Object.entries(videoEvents)) video.addEventListener(type, handler);

  const modelEvents = {
    "change:url": attach,
    "change:engine": attach,
    "change:playing": () => {
      if (model.get("playing") && video.paused) startPlayback();
      else if (!model.get("playing") && !video.paused) video.pause();
    },
    "change:muted": () => { video.muted = model.get("muted"); },
    "change:volume": () => { video.volume = model.get("volume"); },
    "msg:custom": (message) => { if (message?.type === "reload") attach(); },
  };
  for (const [name, handler] of Object.entries(modelEvents)) model.on(name, handler);
  retry.addEventListener("click", attach);
  video.textTracks.addEventListener("addtrack", onNativeTrack);

  video.muted = model.get("muted");
  video.volume = model.get("volume");
  model.send({ type: "view-opened", view: viewId });
  attach();

  return () => {
    for (const [name, handler] of Object.entries(modelEvents)) model.off(name, handler);
    generation += 1;
    detach();
    relay?.close();
    model.send({ type: "view-closed", view: viewId });
  };
}

export default { render };
