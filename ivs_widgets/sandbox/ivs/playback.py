"""The playback route: a live channel's playlist, init segment and media segments at its playbackUrl
(``/ivs/<channel id>/live.m3u8``) on the control-plane port, fetchable from any page (CORS).

An offline channel answers 404, as a CDN with nothing to serve does; segments live under the stream's
id, so a player still holding an ended stream's playlist cannot get a newer stream's segments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tornado.web

from ivs_widgets.sandbox.ivs.packager import HlsPackager

#: Under PLAYBACK_PATH (``/ivs/{channel_id}/live.m3u8``): the playlist, and files under a stream's id.
ROUTE = r"/ivs/([A-Za-z0-9]+)/(live\.m3u8|st-[A-Za-z0-9]+/(?:init\.mp4|seg\d+\.m4s))"
CONTENT_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4", "m4s": "video/iso.segment"}
#: The packager of a channel id while it is live.
PackagerOf = Callable[[str], "HlsPackager | None"]


class PlaybackHandler(tornado.web.RequestHandler):
    def initialize(self, packager_of: PackagerOf) -> None:
        self.packager_of = packager_of

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")  # players fetch from the notebook's origin

    def get(self, channel_id: str, name: str) -> None:
        packager = self.packager_of(channel_id)
        body: Any = None
        if packager is None:
            pass
        elif name == "live.m3u8":
            body = packager.playlist()
            self.set_header("Cache-Control", "no-cache")  # a live playlist changes every segment
        else:
            stream_id, file = name.split("/")
            if stream_id == packager.stream.stream_id:
                body = packager.file(file)
        if body is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", CONTENT_TYPES[name.rsplit(".", 1)[1]])
        self.write(body)


def route(packager_of: PackagerOf) -> tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]:
    return ROUTE, PlaybackHandler, {"packager_of": packager_of}
