"""The test stream's HTTP routes: the playlist and segments of one folder, as a browser needs them."""

from __future__ import annotations

from pathlib import Path

import tornado.web

CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


class HlsHandler(tornado.web.RequestHandler):
    """Serves the playlist and segments whole, read in one go.

    Not StaticFileHandler: it stats and opens a file separately (the playlist is replaced every
    segment in between) and caches ETags per path for the process's life, so a rewritten playlist
    would be answered with 304.
    """

    def initialize(self, folder: Path) -> None:
        self.folder = folder

    def set_default_headers(self) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")  # players fetch from the JupyterLab origin

    def get(self, name: str) -> None:
        try:
            body = (self.folder / name).read_bytes()
        except FileNotFoundError:
            raise tornado.web.HTTPError(404) from None
        suffix = Path(name).suffix
        self.set_header("Content-Type", CONTENT_TYPES[suffix])
        if suffix == ".m3u8":
            self.set_header("Cache-Control", "no-cache")  # a live playlist changes every segment
        self.write(body)


def application(folder: Path) -> tornado.web.Application:
    """Serve ``folder``'s playlist and segments (names only: no path can leave the folder)."""
    return tornado.web.Application([(r"/([A-Za-z0-9_-]+\.(?:m3u8|ts))", HlsHandler, {"folder": folder})])
