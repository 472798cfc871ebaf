"""Live video benchmark: what a live channel costs the sandbox, and how soon a frame is listed.

``ivs-sandbox`` runs in its own process; test-card encoders (ffmpeg, ``-re``, the built-in clock and
tone, a keyframe a second) publish over RTMP from this process, one per channel. Phases in one run:
idle (no stream: the baseline), 1 channel, ``--channels`` channels.

Figures per phase:
- CPU, as % of one core, with nothing fetching the playlists: the sandbox process (RTMP reading, segment publishing, HTTP), its packager
  ffmpeg children (``-c copy`` into CMAF), and the encoders; per live channel, the sandbox above its
  idle baseline plus its packager, and that as a ratio to one encoder's own CPU.
- ingest-to-playlist latency: this process fetches every channel's playlist every ``--poll`` s and
  notes when each segment first appears. A segment's EXT-X-PROGRAM-DATE-TIME is the ingest's wall
  clock when its first frame arrived, and the encoder sends in real time: *first frame* = listed −
  PROGRAM-DATE-TIME (the segment's length plus the packaging), *last frame* = that minus the
  segment's duration (what packaging adds to the newest frame). The poll period adds up to ``--poll``.
- with ``--player``: how far behind the ingest's clock the picture hls.js shows is, from its
  ``playingDate`` (PROGRAM-DATE-TIME carried to the playback position): the ingest-to-screen latency.

    python benchmarks/ingest.py                       # 2 × 15 s per phase, 3 channels at once
    python benchmarks/ingest.py --seconds 10 --channels 2 --size 1280x720 --fps 30
    python benchmarks/ingest.py --player              # and hls.js's distance behind the ingest
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import psutil

from ivs_widgets.cli import READY
from ivs_widgets.test_card import TestCardFeed


def start_sandbox() -> tuple[subprocess.Popen[str], dict[str, str], str]:
    """``ivs-sandbox`` in its own process: it, the exports it printed, and its RTMP server URL."""
    process = subprocess.Popen([sys.executable, "-m", "ivs_widgets.sandbox", "--port", "0", "--ingest-port", "0",
                                "--no-rate-quotas"], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "AWS_CONFIG_FILE": os.devnull})
    assert process.stdout is not None
    exports, rtmp_url = {}, ""
    while not (line := process.stdout.readline()).startswith(READY):
        if not line:
            raise SystemExit("ivs-sandbox exited before it was ready")
        if line.startswith("export "):
            name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
            exports[name] = value
        elif line.startswith("RTMP ingest"):
            rtmp_url = line.split(":", 1)[1].split()[0]
    return process, exports, rtmp_url


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class PlaylistWatch(threading.Thread):
    """Fetch a playlist every ``poll`` s; note when each segment is first listed, and its PDT and length."""

    def __init__(self, url: str, poll: float) -> None:
        super().__init__(daemon=True)
        self.url, self.poll = url, poll
        self.seen: dict[str, tuple[float, float, float]] = {}  # uri → (listed at, PDT, duration)
        self.before: set[str] | None = None  # what the first listing held: listed before the watch began
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.poll):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                continue
            now = time.time()
            if self.before is None:
                self.before = {line for line in text.splitlines() if line and not line.startswith("#")}
            pdt = duration = 0.0
            for line in text.splitlines():
                if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                    pdt = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
                elif line.startswith("#EXTINF:"):
                    duration = float(line[8:].split(",")[0])
                elif line and not line.startswith("#") and line not in self.seen and line not in self.before:
                    self.seen[line] = (now, pdt, duration)


def phase(name: str, sandbox: psutil.Process, feeds: list[TestCardFeed], urls: list[str], seconds: float,
          poll: float) -> dict[str, Any]:
    """CPU over ``seconds`` with nobody fetching (playlist polls would cost the sandbox CPU too), then
    latency over ``seconds`` with the playlists polled."""
    encoders = [psutil.Process(feed.process.pid) for feed in feeds if feed.process is not None]
    packagers = [child for child in sandbox.children() if "ffmpeg" in child.name()]
    before = [cpu_seconds([sandbox]), cpu_seconds(packagers), cpu_seconds(encoders)]
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    after = [cpu_seconds([sandbox]), cpu_seconds(packagers), cpu_seconds(encoders)]
    sandbox_cpu, packager_cpu, encoder_cpu = (100 * (a - b) / elapsed for a, b in zip(after, before, strict=True))
    watches = [PlaylistWatch(url, poll) for url in urls]
    for watch in watches:
        watch.start()
    time.sleep(seconds if urls else 0)
    for watch in watches:
        watch.stopping.set()
    first, last = [], []
    for watch in watches:
        for listed, pdt, duration in watch.seen.values():
            first.append(listed - pdt)
            last.append(listed - pdt - duration)
    return {"name": name, "channels": len(feeds), "sandbox": sandbox_cpu, "packagers": packager_cpu,
            "encoders": encoder_cpu, "first": first, "last": last}


PLAYER_PAGE = """<!doctype html><video id="v" muted autoplay playsinline></video>
<script type="module">
import Hls from "./hls.js";
const hls = new Hls();
hls.loadSource(new URLSearchParams(location.search).get("src"));
hls.attachMedia(document.getElementById("v"));
window.behind = () => hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null;
</script>"""


def player_latency(url: str, seconds: float) -> list[float]:
    """How far behind the ingest's clock the picture hls.js shows is (its ``playingDate``, from
    PROGRAM-DATE-TIME), sampled every 0.5 s in headless Chromium with hls.js's default settings."""
    import functools
    import http.server
    import tempfile

    from playwright.sync_api import sync_playwright

    import ivs_widgets

    folder = Path(tempfile.mkdtemp(prefix="ivs-bench-"))
    (folder / "index.html").write_text(PLAYER_PAGE)
    (folder / "hls.js").write_bytes((Path(ivs_widgets.__file__).parent / "widgets/vendor/hls.light.min.esm.js")
                                    .read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    samples: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html?src={url}")
            page.wait_for_function("window.behind && window.behind() !== null", timeout=60_000)
            page.wait_for_timeout(3000)  # past hls.js's start-up seek
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                samples.append(page.evaluate("window.behind()"))
                page.wait_for_timeout(500)
            browser.close()
    finally:
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    return samples


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15, help="per measurement (CPU, then latency)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--size", default="640x360", help="the encoders' picture (default: 640x360)")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--poll", type=float, default=0.05, help="playlist fetch period, s (default: 0.05)")
    parser.add_argument("--player", action="store_true",
                        help="also measure how far behind the ingest hls.js plays (headless Chromium)")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))

    process, env, rtmp_url = start_sandbox()
    sandbox = psutil.Process(process.pid)
    ivs = boto3.client("ivs", endpoint_url=env["AWS_ENDPOINT_URL_IVS"], region_name=env["AWS_DEFAULT_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    feeds: list[TestCardFeed] = []
    urls: list[str] = []
    results = []
    try:
        results.append(phase("idle", sandbox, [], [], args.seconds, args.poll))
        for count in sorted({1, args.channels}):
            while len(feeds) < count:
                channel = ivs.create_channel(name=f"bench-{len(feeds)}")
                feeds.append(TestCardFeed(rtmp_url + channel["streamKey"]["value"], width=width, height=height,
                                          fps=args.fps).start())
                urls.append(channel["channel"]["playbackUrl"])
            time.sleep(3)  # the new encoders start and their first segments are listed before measuring
            results.append(phase(f"{count} channel{'s' * (count > 1)}", sandbox, feeds, urls, args.seconds,
                                 args.poll))
        behind = player_latency(urls[0], args.seconds) if args.player else []
    finally:
        for feed in feeds:
            feed.stop()
        process.terminate()
        process.wait(timeout=15)

    idle = results[0]["sandbox"]
    print(f"encoders: {width}x{height} at {args.fps} fps, x264 ultrafast, AAC; {args.seconds:.0f} s a phase; "
          f"{os.cpu_count()} cores")
    print(f"{'phase':<11} {'sandbox %':>9} {'packagers %':>11} {'encoders %':>10} {'per channel %':>13} "
          f"{'÷ encoder':>9} {'first frame p50/p95 s':>22} {'last frame p50/p95 s':>21}")
    for r in results:
        n = r["channels"]
        per_channel = ((r["sandbox"] - idle) + r["packagers"]) / n if n else float("nan")
        ratio = per_channel / (r["encoders"] / n) if n and r["encoders"] else float("nan")
        print(f"{r['name']:<11} {r['sandbox']:>9.1f} {r['packagers']:>11.1f} {r['encoders']:>10.1f} "
              f"{per_channel:>13.1f} {ratio:>9.2f} "
              f"{percentile(r['first'], .5):>10.2f}/{percentile(r['first'], .95):<11.2f}"
              f"{percentile(r['last'], .5):>10.2f}/{percentile(r['last'], .95):<10.2f}"
              + (f" ({len(r['first'])} segments)" if n else ""))

    if behind:
        print(f"hls.js (defaults) plays {percentile(behind, .5):.2f} s behind the ingest's clock (p50; p95 "
              f"{percentile(behind, .95):.2f} s; {len(behind)} samples over {args.seconds:.0f} s, {len(feeds)} "
              "channels live)")


if __name__ == "__main__":
    main()
