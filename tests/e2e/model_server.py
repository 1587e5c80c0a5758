"""A two-version model server for the end-to-end test, run as its own process.

``GET /chat?version=v2&region=eu&n=100`` serves ``n`` requests of one user with that model
version and counts them, and the harmful outputs among them, in the ``prometheus_client``
counters ``requests_total`` and ``harmful_total`` by ``version`` and ``region``; ``/metrics``
exposes them for Prometheus. Harmful outputs come at an exact rate per version and region
(``HARM``), so that the test's verdicts rest on the gates, not on luck.

Usage: ``python model_server.py`` prints its port on the first line of stdout.
"""

from __future__ import annotations

import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

VERSIONS = ("v1", "v2", "v3")
REGIONS = ("us", "eu")
BASE_HARM = 0.02  # 2% of outputs flagged harmful by the (imagined) classifier
# v2 is as safe as v1; v3 has 3x the harmful outputs in the EU only.
HARM = {(v, r): BASE_HARM * (3 if (v, r) == ("v3", "eu") else 1)
        for v in VERSIONS for r in REGIONS}
MAX_N = 10_000  # requests one call may stand for

registry = CollectorRegistry()
requests = Counter("requests", "Requests served", ["version", "region"], registry=registry)
harmful = Counter("harmful", "Harmful outputs served", ["version", "region"],
                  registry=registry)
for version in VERSIONS:  # every label set exists from the start: increase() sees zeros
    for region in REGIONS:
        requests.labels(version, region).inc(0)
        harmful.labels(version, region).inc(0)
served = dict.fromkeys(HARM, 0)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the test's users reuse connections
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms ACK wait

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        url = urlparse(self.path)
        if url.path == "/metrics":
            self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = (query.get("version", ""), query.get("region", ""))
        try:
            n = int(query.get("n", "1"))
        except ValueError:
            n = -1
        if url.path != "/chat" or key not in HARM or not 0 < n <= MAX_N:
            self._answer(400, b"bad request", "text/plain")
            return
        with lock:
            before = served[key]
            served[key] = before + n
            bad = math.floor(served[key] * HARM[key]) - math.floor(before * HARM[key])
            requests.labels(*key).inc(n)
            harmful.labels(*key).inc(bad)
        self._answer(200, f'{{"harmful": {bad}}}'.encode(), "application/json")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
