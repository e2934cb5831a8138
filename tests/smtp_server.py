#!/usr/bin/env python3
"""A real SMTP server for Herald's e-mail tests (aiosmtpd).

usage: smtp_server.py PORT OUTDIR MODE [CERT KEY] [--user U --password P]
                      [--fail-first N] [--secret S]

MODE is "plain" (no TLS offered), "starttls" (STARTTLS offered) or
"implicit" (TLS from the first byte, as on port 465). Each accepted message
is written to OUTDIR as <n>.json with the envelope, the raw message, whether
the session was encrypted and who authenticated. --fail-first N answers the
first N messages with a transient 451 error. --secret S offers CRAM-MD5
(checked against S, the shared secret) besides PLAIN and LOGIN. Prints
"ready" once listening.
"""
import argparse
import hmac
import email
import email.header
import email.policy
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("outdir")
ap.add_argument("mode", choices=["plain", "starttls", "implicit"])
ap.add_argument("cert", nargs="?")
ap.add_argument("key", nargs="?")
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--exclude-mechanism", action="append", default=[])
ap.add_argument("--secret")
args = ap.parse_args()
if not args.secret:
    args.exclude_mechanism.append("CRAM-MD5")
os.makedirs(args.outdir, exist_ok=True)

state = {"n": 0, "failed": 0}


class Handler:
    async def handle_DATA(self, server, session, envelope):
        if state["failed"] < args.fail_first:
            state["failed"] += 1
            return "451 4.3.0 try again later"
        state["n"] += 1
        auth = session.auth_data
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = [msg] if not msg.is_multipart() else list(msg.iter_parts())
        record = {
            # Decoded by Python's own MIME implementation, independent of
            # the one that wrote the message.
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": [
                {"content_type": p.get_content_type(), "cte": p.get("Content-Transfer-Encoding"), "body": p.get_content()}
                for p in parts
            ],
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "auth_mechanism": state.get("mechanism"),
            "helo": session.host_name,
        }
        tmp = os.path.join(args.outdir, ".%d.tmp" % state["n"])
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(args.outdir, "%d.json" % state["n"]))
        return "250 OK"

    async def auth_CRAM__MD5(self, server, _args):
        """RFC 2195: the client proves it knows the secret by the HMAC-MD5 of
        a challenge that is new for each session."""
        challenge = "<%d.%d@smtp.test>" % (os.getpid(), time.time_ns())
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False, handled=False)
        user, _, digest = answer.decode().partition(" ")
        want = hmac.new(args.secret.encode(), challenge.encode(), "md5").hexdigest()
        state["mechanism"] = "CRAM-MD5"
        ok = user == args.user and hmac.compare_digest(digest, want)
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b""))


def authenticator(server, session, envelope, mechanism, auth_data):
    state["mechanism"] = mechanism
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == args.user
        and auth_data.password.decode() == args.password
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


ctx = None
if args.cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)

kwargs = {}
if args.user:
    kwargs.update(
        authenticator=authenticator,
        auth_require_tls=args.mode != "plain",
        auth_exclude_mechanism=args.exclude_mechanism,
    )
if args.mode == "starttls":
    kwargs.update(tls_context=ctx, require_starttls=True)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=args.port,
    ssl_context=ctx if args.mode == "implicit" else None,
    **kwargs,
)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
    sys.exit(0)
