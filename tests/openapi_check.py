#!/usr/bin/env python3
"""Validates Herald's API v2 requests and answers against Alertmanager's
OpenAPI (Swagger 2.0) spec of the reference release (0.33.1), as embedded in
its source (api/v2/restapi/embedded_spec.go) under $HERALD_AM_CURRENT
(default target/am-current, unpacked by scripts/reference.sh). Fails loudly if anything is
missing or does not validate."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import jsonschema

AM_CURRENT = os.environ.get(
    "HERALD_AM_CURRENT",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "am-current"),
)
SPEC_GO = os.path.join(
    AM_CURRENT,
    "root/usr/share/gocode/src/github.com/prometheus/alertmanager/api/v2/restapi/embedded_spec.go",
)


def load_spec():
    text = open(SPEC_GO, encoding="utf-8").read()
    m = re.search(r"SwaggerJSON = json\.RawMessage\(\[\]byte\(`(.*?)`\)\)", text, re.S)
    if not m:
        sys.exit(f"no SwaggerJSON in {SPEC_GO}")
    # Backticks inside Go's raw string are spliced in as "`" + "`" + "`".
    spec = json.loads(m.group(1).replace('` + "`" + `', "`"))
    # The spec lists gettableSilence.annotations as required, but
    # Alertmanager's model writes it with omitempty: a silence without
    # annotations has no such key there either (checked in tests/api.rs).
    for part in spec["definitions"]["gettableSilence"].get("allOf", []):
        if "annotations" in part.get("required", []):
            part["required"].remove("annotations")
    return spec


def validator(spec, ref):
    schema = {"$ref": f"#/definitions/{ref}", "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    herald = sys.argv[1]
    spec = load_spec()
    failures = []

    def check(name, ref, value):
        errors = sorted(validator(spec, ref).iter_errors(value), key=lambda e: list(e.path))
        for e in errors:
            failures.append(f"{name}: {'/'.join(map(str, e.path))}: {e.message}")
        print(f"{'ok  ' if not errors else 'FAIL'} {name} against {ref}")

    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "herald.yml")
        with open(cfg, "w") as f:
            f.write(
                "route:\n  receiver: a\n  group_by: [alertname]\n  routes:\n    - matchers: ['severity=\"critical\"']\n      receiver: b\n"
                "receivers:\n  - name: a\n    webhook_configs: [{url: 'http://127.0.0.1:9/'}]\n  - name: b\n"
                "    webhook_configs: [{url: 'http://127.0.0.1:9/b', http_config: {basic_auth: {username: u, password: p}}}]\n"
            )
        port = free_port()
        proc = subprocess.Popen(
            [herald, f"--config.file={cfg}", f"--storage.path={d}/data", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/api/v2"
        try:
            deadline = time.time() + 20
            while True:
                try:
                    if request("GET", f"http://127.0.0.1:{port}/-/ready")[0] == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    sys.exit("herald did not become ready")
                time.sleep(0.05)

            alerts = [
                {"labels": {"alertname": "A", "severity": "critical", "instance": "x:1"},
                 "annotations": {"summary": "s"}, "generatorURL": "http://prom/graph",
                 "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z"},
                {"labels": {"alertname": "B"}},
            ]
            check("POST /alerts body", "postableAlerts", alerts)
            code, body = request("POST", f"{base}/alerts", alerts)
            if code != 200:
                failures.append(f"POST /alerts answered {code}: {body!r}")
            for path, ref in [("/alerts", "gettableAlerts"), ("/alerts/groups", "alertGroups"),
                              ("/status", "alertmanagerStatus"), ("/receivers", None)]:
                code, body = request("GET", base + path)
                if code != 200:
                    failures.append(f"GET {path} answered {code}")
                    continue
                value = json.loads(body)
                if ref is None:
                    if not value:
                        failures.append(f"GET {path}: no receivers listed")
                    for r in value:
                        check(f"GET {path} item", "receiver", r)
                else:
                    check(f"GET {path}", ref, value)
            now = time.time()
            iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
            silence = {"matchers": [{"name": "alertname", "value": "A", "isRegex": False, "isEqual": True}],
                       "startsAt": iso(now), "endsAt": iso(now + 3600), "createdBy": "check", "comment": "c"}
            annotated = dict(silence, annotations={"ticket": "T-1"},
                             matchers=[{"name": "alertname", "value": "B", "isRegex": False}])
            check("POST /silences body with annotations", "postableSilence", annotated)
            code, body = request("POST", f"{base}/silences", annotated)
            if code != 200:
                failures.append(f"POST /silences with annotations answered {code}: {body!r}")
            check("POST /silences body", "postableSilence", silence)
            code, body = request("POST", f"{base}/silences", silence)
            if code != 200:
                failures.append(f"POST /silences answered {code}: {body!r}")
            else:
                sid = json.loads(body)["silenceID"]
                code, body = request("GET", f"{base}/silences")
                check("GET /silences", "gettableSilences", json.loads(body))
                code, body = request("GET", f"{base}/silence/{sid}")
                check("GET /silence/{id}", "gettableSilence", json.loads(body))
                code, body = request("GET", base + "/alerts")
                check("GET /alerts with a silence", "gettableAlerts", json.loads(body))
            code, body = request("POST", f"{base}/alerts", [{"labels": {"a": ""}}])
            if code != 400 or not isinstance(json.loads(body), str):
                failures.append(f"invalid alert: expected 400 with a JSON string, got {code} {body!r}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("API v2 answers validate against Alertmanager's OpenAPI spec")


if __name__ == "__main__":
    main()
