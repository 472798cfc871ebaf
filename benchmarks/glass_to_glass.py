"""Glass-to-glass latency of a local channel: the encoder's clock burnt into the picture vs the moment
the player shows that picture.

This process runs a sandbox and an encoder: ffmpeg's test card pushed over RTMP to a channel with its
stream key, as OBS would, with the frame's own time drawn at the top of every frame as a 32-bit bar
code (milliseconds; white bar = 1). ffmpeg reports its progress as it sends, which ties its frame
times to the wall clock (the smallest "now - out_time" seen). Headless Chromium plays the channel's
playbackUrl with hls.js (the build PlayerPanel sends), and at each presented frame, at most every
100 ms, copies the bar code to a canvas, reads it and notes when the frame was shown
(``requestVideoFrameCallback``'s expected display time). Same machine, same clock: shown minus
sent is the glass-to-glass latency.

Baselines from the same run, of the same frames: the player's own estimates (hls.js's ``latency``,
its distance behind the live edge it estimates from the playlist; and shown minus the frame's time by
the playlist's EXT-X-PROGRAM-DATE-TIME), and how long after a segment's last frame (by PROGRAM-DATE-TIME)
the playlist lists it, polled every 50 ms from this process.

    python benchmarks/glass_to_glass.py                 # 60 s of measurement after 10 s of warm-up
    python benchmarks/glass_to_glass.py --seconds 20 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from panel import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import sync_playwright

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.widgets.player import HLS_JS

WIDTH, HEIGHT, FPS = 640, 360, 15
BITS, BAR_WIDTH, BAR_HEIGHT = 32, 16, 32
#: The frame's time in ms, bit 31 leftmost, drawn over the test card's top left corner.
BAR_CODE = (f"color=black:size={BITS * BAR_WIDTH}x{BAR_HEIGHT}:rate={FPS},format=gray,"
            f"geq=lum='255*mod(floor(T*1000/pow(2\\,{BITS - 1}-floor(X/{BAR_WIDTH})))\\,2)'")
PAGE = """<!doctype html><meta charset="utf-8"><title>glass to glass</title>
<video id="video" muted autoplay playsinline></video>
<canvas id="bars" width="%(bar_width)d" height="%(bar_height)d"></canvas>
<script type="module">
import Hls from "./hls.js";
const video = document.getElementById("video");
const bars = document.getElementById("bars").getContext("2d", { willReadFrequently: true });
const hls = new Hls();
hls.loadSource(new URLSearchParams(location.search).get("url"));
hls.attachMedia(video);
window.samples = [];
let last = 0;
function read(_now, frame) {
  const shown = performance.timeOrigin + frame.expectedDisplayTime;
  if (shown - last >= 100) {
    last = shown;
    bars.drawImage(video, 0, 0, %(bar_width)d, %(bar_height)d, 0, 0, %(bar_width)d, %(bar_height)d);
    const pixels = bars.getImageData(0, 0, %(bar_width)d, %(bar_height)d).data;
    let sent = 0;
    for (let bit = 0; bit < %(bits)d; bit++) {
      const x = bit * %(bar)d + %(bar)d / 2, y = %(bar_height)d / 2;
      sent = sent * 2 + (pixels[(y * %(bar_width)d + x) * 4] > 127 ? 1 : 0);
    }
    window.samples.push({ shown, sent, hlsLatency: hls.latency, playingDate: hls.playingDate?.getTime() ?? null });
  }
  video.requestVideoFrameCallback(read);
}
video.requestVideoFrameCallback(read);
</script>
""" % {"bar_width": BITS * BAR_WIDTH, "bar_height": BAR_HEIGHT, "bits": BITS, "bar": BAR_WIDTH}


class Encoder:
    """ffmpeg publishing the bar-coded test card and a tone to ``rtmp_url`` in real time (no initial
    burst), a keyframe a second; ``offset`` is the wall clock (epoch s) of frame time 0."""

    def __init__(self, rtmp_url: str) -> None:
        import imageio_ffmpeg

        card = f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}"
        realtime = ["-re", "-readrate_initial_burst", "0"]
        self.command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-progress", "pipe:1", *realtime, "-f", "lavfi", "-i", card,
            *realtime, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-filter_complex", f"{BAR_CODE}[bars];[0:v][bars]overlay=0:0,format=yuv420p[video]",
            "-map", "[video]", "-map", "1:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
            "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "48k", "-ac", "1", "-f", "flv", rtmp_url]
        self.offset = float("inf")
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Encoder:
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_progress, daemon=True).start()
        return self

    def _read_progress(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("out_time_us=") and line[12:].strip().isdigit():
                self.offset = min(self.offset, time.time() - int(line[12:]) / 1e6)

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


class PlaylistWatch:
    """Polls a live playlist every 50 ms; ``delays``: listed time minus the segment's end by PDT (s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.delays: list[float] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PlaylistWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        first = True
        while not self._stop.wait(0.05):
            text = urllib.request.urlopen(self.url, timeout=5).read().decode()
            listed = time.time()
            for date, duration, uri in re.findall(
                    r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\s+#EXTINF:([\d.]+),\s*(\S+)", text):
                if uri not in self._seen and not first:  # segments listed before the watch began: no time
                    self.delays.append(listed - datetime.fromisoformat(date).timestamp() - float(duration))
                self._seen.add(uri)
            first = False


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_page(folder: Path) -> Iterator[str]:
    (folder / "index.html").write_text(PAGE)
    (folder / "hls.js").write_bytes(HLS_JS.read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def wait_until_playable(url: str, timeout: float = 60) -> None:
    """Polls until the playlist lists a segment (the encoder connected, the packager cut one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if "#EXTINF" in urllib.request.urlopen(url, timeout=5).read().decode():
                return
        time.sleep(0.2)
    raise SystemExit(f"the channel did not go live within {timeout} s")


def one_run(seconds: float, warmup: float) -> dict[str, list[float]]:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as folder, serve_page(Path(folder)) as page_url:
        ivs = sandbox.client("ivs")
        created = ivs.create_channel(name="glass-to-glass")
        channel, key = created["channel"], created["streamKey"]["value"]
        with Encoder(sandbox.rtmp_url + key) as encoder, sync_playwright() as playwright:
            wait_until_playable(channel["playbackUrl"])
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(f"{page_url}?url={channel['playbackUrl']}")
            page.wait_for_function("() => window.samples.length > 0", timeout=60_000)
            time.sleep(warmup)  # the benchmark's measuring window: a duration, not an event
            page.evaluate("() => { window.samples = []; }")
            with PlaylistWatch(channel["playbackUrl"]) as watch:
                time.sleep(seconds)
            samples: list[dict[str, Any]] = page.evaluate("() => window.samples")
            browser.close()
            offset_ms = encoder.offset * 1000
    glass = [(s["shown"] - offset_ms - s["sent"]) / 1000 for s in samples]
    center = statistics.median(glass)
    readable = [g for g in glass if abs(g - center) < 5]  # a bar code misread (a blurred frame) is far off
    return {
        "glass": readable,
        "misread": [float(len(glass) - len(readable))],
        "pdt": [(s["shown"] - s["playingDate"]) / 1000 for s in samples if s["playingDate"]],
        "hls": [s["hlsLatency"] for s in samples if s["hlsLatency"] is not None],
        "listed": watch.delays,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of playing before measuring")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        figures = one_run(args.seconds, args.warmup)
        glass = figures["glass"]
        print(f"run {run}: {len(glass)} frames read ({int(figures['misread'][0])} misread), "
              f"{len(figures['listed'])} segments listed")
        rows = [("glass to glass: burnt-in clock → shown", glass),
                ("player's estimate: PROGRAM-DATE-TIME → shown", figures["pdt"]),
                ("hls.js latency (behind its live edge)", figures["hls"]),
                ("segment listed after its last frame (PDT)", figures["listed"])]
        for label, values in rows:
            if values:
                print(f"  {label:46} median {statistics.median(values):5.2f} s   p95 {percentile(values, 0.95):5.2f} s"
                      f"   ratio to glass-to-glass {statistics.median(values) / statistics.median(glass):4.2f}")


if __name__ == "__main__":
    main()
