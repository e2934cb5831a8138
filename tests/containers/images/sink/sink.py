#!/usr/bin/env python3
"""The container stack test's stand-in for the world Herald notifies: an
SMTP server (port 1025) and an HTTP endpoint (port 8080) that takes what
Slack's and PagerDuty's webhooks would (POST /slack, POST /pagerduty).
GET /received answers everything received so far, as JSON:
{"smtp": [{"to": [...], "subject": ..., "body": ...}], "http": [{"path": ..., "body": {...}}]}.
"""
import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

lock = threading.Lock()
received = {"smtp": [], "http": []}


class Mail:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        with lock:
            received["smtp"].append({
                "to": list(envelope.rcpt_tos),
                "subject": str(msg["subject"]),
                "body": body.get_content() if body else "",
            })
        return "250 OK"


class Web(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/received":
            self.send_error(404)
            return
        with lock:
            out = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with lock:
            received["http"].append({"path": self.path, "body": body})
        # Slack answers "ok"; PagerDuty's Events API 202 with a JSON status.
        reply = b"ok" if self.path == "/slack" else b'{"status":"success"}'
        self.send_response(202 if self.path == "/pagerduty" else 200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


Controller(Mail(), hostname="0.0.0.0", port=1025).start()
ThreadingHTTPServer(("0.0.0.0", 8080), Web).serve_forever()
