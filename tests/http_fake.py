"""Serve a fake REST API on 127.0.0.1 (ephemeral port) from one function: handle(method, path, query, body,
headers) → (status, json or raw bytes). The boundary the real clients (kfp, kubernetes) talk to in tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

Handle = Callable[[str, str, dict, bytes, dict], tuple[int, dict]]


def serve(handle: Handle) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _do(self):
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, payload = handle(self.command, url.path, parse_qs(url.query), body, headers)
            raw = isinstance(payload, bytes)  # streamed bodies (watch events, logs) as the handler wrote them
            data = payload if raw else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if raw else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def running(fake, handle: Handle):
    """For a pytest fixture: `yield from running(fake, handle)` gives (fake, url) and stops the server after."""
    server, url = serve(handle)
    try:
        yield fake, url
    finally:
        server.shutdown()
