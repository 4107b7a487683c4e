"""A tiny shop on 127.0.0.1 for ``workflow.yaml``: catalog, orders, shipping, webhooks.

    python serve.py                      # port 8765
    python serve.py --port 0 --port-file port.txt   # a free port, written to the file

=========================  ==================================================
``GET /catalog/NAME``      the item (``{"name", "price"}``), 404 if unknown
``POST /orders``           ``Authorization: Bearer demo-token`` required (401
                           otherwise); the first order answers 503 once, to
                           show the retries; then 201 ``{"id": "ord-N", ...}``
``GET /orders/ID/status``  ``{"state": "packing"}`` twice, then ``"shipped"``
``POST /events``           a webhook receiver: keeps each JSON event
``GET /_stats``            what happened: requests per path, events received
=========================  ==================================================

It prints ``serve.py: listening on URL`` to stdout once it accepts
connections, and a line per request to stderr. The standard library only;
stop it with Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "demo-token"
CATALOG = {"widget": {"name": "widget", "price": 3.5}, "gadget": {"name": "gadget", "price": 12}}


class Shop:
    """The shop's state, shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.orders: dict[str, dict[str, Any]] = {}
        self.polls: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []
        self.refused_once = False

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        """``(status, JSON document)`` for one request."""
        with self.lock:
            self.requests[f"{method} {re.sub(r'ord-[0-9]+', 'ID', path)}"] += 1
            if method == "GET" and path.startswith("/catalog/"):
                item = CATALOG.get(path.removeprefix("/catalog/"))
                return (200, item) if item else (404, {"error": "no such item"})
            if method == "POST" and path == "/orders":
                return self._order(headers, body)
            match = re.fullmatch(r"/orders/(ord-[0-9]+)/status", path)
            if method == "GET" and match:
                if match.group(1) not in self.orders:
                    return 404, {"error": "no such order"}
                self.polls[match.group(1)] += 1
                state = "shipped" if self.polls[match.group(1)] > 2 else "packing"
                return 200, {"id": match.group(1), "state": state}
            if method == "POST" and path == "/events":
                self.events.append(json.loads(body))
                return 204, None
            if method == "GET" and path == "/_stats":
                return 200, {
                    "requests": dict(self.requests),
                    "events": [e["type"] for e in self.events],
                    "orders": self.orders,
                }
            return 404, {"error": f"nothing at {method} {path}"}

    def _order(self, headers: Any, body: bytes) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "send Authorization: Bearer demo-token"}
        if not self.refused_once:
            self.refused_once = True
            return 503, {"error": "busy, try again"}
        order = json.loads(body or b"{}")
        if order.get("item") not in CATALOG:
            return 422, {"error": f"unknown item {order.get('item')!r}"}
        order_id = f"ord-{len(self.orders) + 1}"
        self.orders[order_id] = order
        return 201, {"id": order_id, **order}


def handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``shop``."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, document = shop.answer(self.command, self.path, self.headers, body)
            data = b"" if document is None else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"serve.py: {self.command} {self.path} -> {args[1]}\n")

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    args = parser.parse_args(argv)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), handler(Shop()))
    port = httpd.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    if args.port_file:
        args.port_file.write_text(str(port))
    print(f"serve.py: listening on http://127.0.0.1:{port}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
