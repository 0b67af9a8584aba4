"""A tiny JSON API for the HTTP example and the HTTP benchmark: no internet needed.

Serves `<root>/<path>.json` for `GET /<path>` (the query string is ignored) as
`application/json`, 404 otherwise, optionally after a fixed delay. Threaded, so concurrent
requests are answered concurrently.

    python scripts/fixture_server.py                    # config/http on 127.0.0.1:8765
    python scripts/fixture_server.py --port 0 --delay 1 # any free port, answers after 1 s
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "config" / "http"
DEFAULT_PORT = 8765


def make_server(root: Path = DEFAULT_ROOT, port: int = DEFAULT_PORT, delay: float = 0.0):
    """A started-on-demand server: call `serve_forever()` (or use `start_in_thread`)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's method name
            if delay:
                time.sleep(delay)
            relative = urlsplit(self.path).path.strip("/")
            file = (root / f"{relative}.json").resolve()
            if root.resolve() not in file.parents or not file.is_file():
                self.send_error(404, "no such fixture")
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    class Server(ThreadingHTTPServer):
        # The default backlog (5) drops connections when many requests start at once, and the
        # client's TCP retry then costs a second.
        request_queue_size = 128

    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def start_in_thread(root: Path = DEFAULT_ROOT, port: int = DEFAULT_PORT, delay: float = 0.0):
    server = make_server(root, port, delay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    server = make_server(args.root, args.port, args.delay)
    print(f"serving {args.root} on http://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
