"""A channel's playbackUrl in real Chromium with the kit's vendored hls.js: the stream plays, and three
PutMetadata calls reach hls.js as emsg/ID3 metadata samples, in order, each at the stream position
where it was put (the wire contract the player panel's cues stand on)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mp4util import txxx_text

import ivs_widgets
from ivs_widgets.sandbox import Sandbox

HLS_JS = Path(ivs_widgets.__file__).parent / "widgets" / "vendor" / "hls.light.min.esm.js"
PAGE = """<!doctype html><video id="v" muted autoplay playsinline></video>
<script type="module">
import Hls from "./hls.js";
window.samples = []; window.fatal = [];
const hls = new Hls();
hls.on(Hls.Events.FRAG_PARSING_METADATA, (_, data) => {
  for (const s of data.samples) window.samples.push({pts: s.pts, type: s.type, data: Array.from(s.data)});
});
hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.fatal.push(d.details); });
hls.loadSource(new URLSearchParams(location.search).get("src"));
hls.attachMedia(document.getElementById("v"));
</script>"""
TIMEOUT_MS = 60_000


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The page and hls.js on a loopback origin of their own (not the sandbox's: a cross-origin fetch)."""
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "hls.js").write_bytes(HLS_JS.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def test_hls_js_plays_a_channel_and_gets_each_put_metadata_at_its_stream_position(page: Any, site: str) -> None:
    with Sandbox() as sandbox:
        feed = sandbox.go_live()
        ivs = sandbox.client("ivs")
        try:
            page.goto(f"{site}?src={feed.playback_url}")
            page.wait_for_function("document.getElementById('v').currentTime > 0.5", timeout=TIMEOUT_MS)
            live_points = []
            newest = sandbox.run(sandbox.ingest.wait_for_segments(feed.channel_arn))
            for n in range(3):
                packager = sandbox.ingest.packager(feed.channel_arn)
                assert packager is not None
                live_points.append(packager.live_point_ms / 1000)
                ivs.put_metadata(channelArn=feed.channel_arn, metadata=f"quiz {n}: 2 + 2 = ?")
                newest = sandbox.run(sandbox.ingest.wait_for_segments(feed.channel_arn, after=newest))
            page.wait_for_function("window.samples.length >= 3", timeout=TIMEOUT_MS)
            samples = page.evaluate("window.samples")
            assert [txxx_text(bytes(s["data"])) for s in samples] == [f"quiz {n}: 2 + 2 = ?" for n in range(3)]
            assert {s["type"] for s in samples} == {"https://aomedia.org/emsg/ID3"}
            for sample, live_point in zip(samples, live_points, strict=True):
                assert abs(sample["pts"] - live_point) < 1.0
            # The video's clock is the samples' clock: playback reaches each cue's position.
            page.wait_for_function(f"document.getElementById('v').currentTime > {samples[-1]['pts']}",
                                   timeout=TIMEOUT_MS)
            assert page.evaluate("window.fatal") == []
        finally:
            feed.stop()
