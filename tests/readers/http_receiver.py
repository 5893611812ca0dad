#!/usr/bin/env python3
"""A webhook receiver for the http destination tests that injects failures.

Listens on 127.0.0.1 (a free port, written to --port-file once listening). Every request is
appended to --log as one JSON line: {"n", "status", "method", "path", "key", "headers",
"body_b64"}. Failure injection, by the request's number n (1-based, over all requests):
  --fail-every N      answer --fail-status (default 500) when n % N == 0, body NOT stored
  --fail-first N      answer --fail-status to the first N requests, body NOT stored
  --alt-status S      every second injected failure answers S instead (e.g. 429)
  --slow-every N      when n % N == 0, store the body (status 200 in the log) but sleep
                      --slow-seconds before answering: the client times out and sends it again,
                      so the receiver sees a replay it must drop by idempotency key
  --reject-status S   answer S (e.g. 400) to every request with a short explanation body
Runs until killed (SIGTERM).
"""

import argparse
import base64
import http.server
import json
import os
import threading
import time

lock = threading.Lock()
counter = [0]
failures = [0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--key-header", default="Idempotency-Key")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--alt-status", type=int, default=0)
    p.add_argument("--slow-every", type=int, default=0)
    p.add_argument("--slow-seconds", type=float, default=2.0)
    p.add_argument("--reject-status", type=int, default=0)
    args = p.parse_args()
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # keep stderr quiet
            pass

        def _answer(self, status, text=b""):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def _handle(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            with lock:
                counter[0] += 1
                n = counter[0]
            status = 200
            slow = False
            if args.reject_status:
                status = args.reject_status
            elif n <= args.fail_first or (args.fail_every and n % args.fail_every == 0):
                failures[0] += 1
                status = args.fail_status
                if args.alt_status and failures[0] % 2 == 0:
                    status = args.alt_status
            elif args.slow_every and n % args.slow_every == 0:
                slow = True
            entry = {
                "n": n,
                "status": status,
                "method": self.command,
                "path": self.path,
                "key": self.headers.get(args.key_header, ""),
                "headers": {k: v for k, v in self.headers.items()},
                "body_b64": base64.b64encode(body).decode() if status < 300 else "",
            }
            with lock:
                log.write(json.dumps(entry) + "\n")
            if slow:
                time.sleep(args.slow_seconds)
            if status == args.reject_status and args.reject_status:
                self._answer(status, b"bad payload: the receiver rejects this request on purpose")
            elif status >= 300:
                self._answer(status, b"try again later")
            else:
                self._answer(200, b"ok")

        do_POST = _handle
        do_PUT = _handle
        do_PATCH = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
