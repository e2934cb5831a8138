#!/usr/bin/env python3
"""The container stack test, run by tests/containers/run.sh (which sets up
podman, the base images and the stand-ins; read it first).

usage: stack_test.py WORKDIR   (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and
DOCKER_HOST set by run.sh)

What it checks, in order:
1. The Dockerfile builds, both stages and the dependency layer, into an
   image that runs as 65534, is no larger than Alertmanager's official image
   plus what Herald needs, starts with its default command and passes its
   own HEALTHCHECK.
2. deploy/kubernetes/herald.yaml's StatefulSet, run as a kubelet would run
   its pods (arguments with $(VAR) expanded, the pods' names on a headless
   network, read-only root, UID 65534, the ConfigMap, a volume per pod, the
   reloader sidecar in the pod's network): the probes pass, the three
   replicas form one cluster, and a changed ConfigMap is reloaded.
3. deploy/ copied to WORKDIR/stack, init-secrets.sh, then `docker-compose up`
   of herald, prometheus, node-exporter and the test's notification sink
   (Grafana's image cannot be had here):
   - all turn healthy through their own health checks, and Prometheus
     reaches Herald over TLS with basic auth, as an Alertmanager and as a
     scrape target;
   - a stopped Node Exporter pages through Herald (e-mail, Slack and
     PagerDuty, all received by the sink) and resolves when it starts again;
   - a silence survives `compose restart herald` and `compose down` / `up`;
   - `compose kill -s HUP herald` loads a changed config, and a broken one
     is refused while the old one keeps routing.
4. The HA profile: two Herald containers gossip over mutual TLS (a client
   without the stack's certificate is refused) and one notification goes
   out per group although both receive the alert.
The test-only override (compose.test.yml, written here) adds the sink,
drops the published ports and points the config's SMTP, Slack and
PagerDuty at the sink; everything else is the deploy files as shipped.
Each wait has a deadline; a failure prints the containers' logs.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = sys.argv[1]
STACK = os.path.join(WORK, "stack")
PROJECT = "herald-stack-test"
IMAGE = "localhost/herald:local"
SINK_IMAGE = "localhost/herald-test/sink:local"

# prom/alertmanager's image is the busybox base (about 4.5 MB) plus the
# alertmanager and amtool binaries; Herald needs, besides its one binary,
# the C library it links, the CA bundle and the time zone database. The
# bound is Alertmanager's image as sid's binaries of the same release make
# it, plus 12 MB for those.
AM_BINARIES = ["prometheus-alertmanager", "amtool"]
BUSYBOX_BASE_MB = 4.5
HERALD_NEEDS_MB = 12

# The Kubernetes pods' network: a subnet of its own, so that the pods get
# fixed addresses (status.podIP) and do not meet compose's networks.
K8S_NET = "herald-k8s-test"
K8S_SUBNET = "10.89.200"
K8S_NAMESPACE = "monitoring"


def step(msg):
    print(f"== {msg}", flush=True)


def run(*cmd, check=True, capture=True, env=None, cwd=None, timeout=1800, stdin=None):
    r = subprocess.run(cmd, capture_output=capture, text=True, env=env, cwd=cwd, timeout=timeout,
                       input=stdin)
    if check and r.returncode != 0:
        out = (r.stdout or "") + (r.stderr or "")
        raise SystemExit(f"FAILED: {' '.join(cmd)}\n{out}")
    return r


def wait(what, cond, deadline_s, every=1.0):
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            got = cond()
            if got:
                return got
        except Exception as e:  # a service not up yet answers with an error
            last = e
        time.sleep(every)
    raise SystemExit(f"FAILED: {what} within {deadline_s:.0f} s (last error: {last})")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def metric(text, name):
    """The value of an unlabelled sample in a /metrics answer."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def metric_sum(text, name):
    """The sum of a metric's samples over all their labels."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def tls_probe(addr, ca, name, cert):
    """Whether a TLS server keeps a connection from a client with `cert`
    (a (cert, key) pair, or None) open: "accepted", or "refused: why"."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(*cert)
    try:
        with socket.create_connection(addr, timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.settimeout(3)
            try:
                data = tls.recv(1)
            except socket.timeout:
                return "accepted"  # open, waiting for the client's first byte
            return f"refused: closed ({data!r})"
    except (ssl.SSLError, ConnectionError) as e:
        return f"refused: {e}"


def image_checks():
    step("build the image from the Dockerfile (both stages)")
    t = time.monotonic()
    run("podman", "build", "--format", "docker", "-t", IMAGE, REPO, capture=False)
    print(f"built in {time.monotonic() - t:.0f} s")
    info = json.loads(run("podman", "image", "inspect", IMAGE).stdout)[0]
    user = info["Config"].get("User")
    assert user == "65534:65534", f"image user is {user!r}, not 65534:65534"
    size_mb = info["Size"] / 1e6
    am_dir = os.path.join(REPO, "target", "am-current", "root", "usr", "bin")
    am_mb = BUSYBOX_BASE_MB + sum(os.path.getsize(os.path.join(am_dir, b)) for b in AM_BINARIES) / 1e6
    bound = am_mb + HERALD_NEEDS_MB
    print(f"image {size_mb:.1f} MB; Alertmanager's image ~{am_mb:.1f} MB; bound {bound:.1f} MB")
    assert size_mb <= bound, f"image {size_mb:.1f} MB > {bound:.1f} MB"
    uid = run("podman", "run", "--rm", "--entrypoint", "/bin/sh", IMAGE, "-c", "id -u").stdout.strip()
    assert uid == "65534", f"the image's processes run as {uid}"
    version = run("podman", "run", "--rm", IMAGE, "--version").stdout
    print("herald --version:", version.strip().splitlines()[0] if version.strip() else "(empty)")

    step("the image's default command and its HEALTHCHECK")
    name = "herald-image-check"
    run("podman", "rm", "-f", name, check=False)
    run("podman", "run", "-d", "--name", name, IMAGE)
    try:
        wait("the image's HEALTHCHECK to pass",
             lambda: run("podman", "healthcheck", "run", name, check=False).returncode == 0, 60)
        # The data folder is the volume, written by 65534.
        ls = run("podman", "exec", name, "sh", "-c", "ls -ln /alertmanager").stdout
        assert " 65534 " in ls, f"/alertmanager is not written by 65534:\n{ls}"
    except BaseException:
        print(run("podman", "logs", name, check=False).stderr)
        raise
    finally:
        run("podman", "rm", "-f", "-v", name, check=False)


# ---------------------------------------------------------------- Kubernetes

class Pod:
    """One replica of the StatefulSet, run as a kubelet runs a pod: its
    containers share one network namespace (the first one's), the pod's
    name resolves on the headless Service's network, volumes are the
    ConfigMap (a folder), a PersistentVolumeClaim (a named volume) and an
    emptyDir (a tmpfs)."""

    def __init__(self, sts, ordinal, config_dir):
        self.sts = sts
        self.name = f"{sts['metadata']['name']}-{ordinal}"
        self.ip = f"{K8S_SUBNET}.{10 + ordinal}"
        self.config_dir = config_dir
        self.containers = []

    def field(self, path):
        return {"status.podIP": self.ip, "metadata.namespace": K8S_NAMESPACE,
                "metadata.name": self.name}[path]

    def start(self):
        spec = self.sts["spec"]["template"]["spec"]
        pod_sc = spec.get("securityContext", {})
        service = self.sts["spec"]["serviceName"]
        for i, c in enumerate(spec["containers"]):
            env = {}
            for e in c.get("env", []):
                env[e["name"]] = e["value"] if "value" in e else self.field(e["valueFrom"]["fieldRef"]["fieldPath"])
            args = [expand(a, env) for a in c.get("args", [])]
            cname = f"k8s-{self.name}-{c['name']}"
            cmd = ["podman", "run", "-d", "--name", cname]
            if i == 0:
                cmd += ["--hostname", self.name, "--network", K8S_NET, "--ip", self.ip,
                        "--network-alias", f"{self.name}.{service}"]
            else:
                cmd += ["--network", f"container:{self.containers[0]}"]
            sc = c.get("securityContext", {})
            if "runAsUser" in pod_sc:
                cmd += ["--user", f"{pod_sc['runAsUser']}:{pod_sc.get('runAsGroup', pod_sc['runAsUser'])}"]
            if sc.get("readOnlyRootFilesystem"):
                cmd.append("--read-only")
            for cap in sc.get("capabilities", {}).get("drop", []):
                cmd += ["--cap-drop", cap]
            if sc.get("allowPrivilegeEscalation") is False:
                cmd += ["--security-opt", "no-new-privileges"]
            for k, v in env.items():
                cmd += ["-e", f"{k}={v}"]
            for m in c.get("volumeMounts", []):
                cmd += self.mount(m, spec["volumes"])
            if "command" in c:
                cmd += ["--entrypoint", json.dumps(c["command"])]
            cmd.append(IMAGE if c["image"] == "herald:local" else c["image"])
            cmd += args
            run(*cmd)
            self.containers.append(cname)

    def mount(self, m, volumes):
        ro = ":ro" if m.get("readOnly") else ""
        claims = [t["metadata"]["name"] for t in self.sts["spec"].get("volumeClaimTemplates", [])]
        if m["name"] in claims:
            return ["-v", f"k8s-{m['name']}-{self.name}:{m['mountPath']}{ro}"]
        vol = next(v for v in volumes if v["name"] == m["name"])
        if "configMap" in vol:
            return ["-v", f"{self.config_dir}:{m['mountPath']}{ro}"]
        if "emptyDir" in vol:
            size = vol["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m")
            return ["--tmpfs", f"{m['mountPath']}:size={size}"]
        raise SystemExit(f"FAILED: the test cannot run volume {vol}")

    def probe(self, kind):
        c = self.sts["spec"]["template"]["spec"]["containers"][0]
        p = c[kind]["httpGet"]
        port = next(x["containerPort"] for x in c["ports"] if x["name"] == p["port"]) \
            if isinstance(p["port"], str) else p["port"]
        return http_get(f"http://{self.ip}:{port}{p['path']}")[0] == 200

    def status(self):
        return json.loads(http_get(f"http://{self.ip}:9093/api/v2/status")[1])

    def remove(self):
        for c in reversed(self.containers):
            run("podman", "rm", "-f", c, check=False)
        for t in self.sts["spec"].get("volumeClaimTemplates", []):
            run("podman", "volume", "rm", "-f", f"k8s-{t['metadata']['name']}-{self.name}", check=False)


def expand(arg, env):
    """Kubernetes' $(VAR) expansion of container arguments."""
    for k, v in env.items():
        arg = arg.replace(f"$({k})", v)
    return arg


def kubernetes_checks():
    step("deploy/kubernetes: the StatefulSet's pods, run as a kubelet would")
    with open(os.path.join(REPO, "deploy", "kubernetes", "herald.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    replicas = sts["spec"]["replicas"]
    assert replicas == 3, f"the StatefulSet runs {replicas} replicas"
    # The ConfigMap as the header's `kubectl create configmap` makes it.
    config_dir = os.path.join(WORK, "k8s-config")
    shutil.rmtree(config_dir, ignore_errors=True)
    os.makedirs(config_dir)
    config = os.path.join(config_dir, "alertmanager.yaml")
    shutil.copy(os.path.join(REPO, "deploy", "herald", "herald.yml"), config)
    os.chmod(config_dir, 0o755)
    os.chmod(config, 0o644)

    run("podman", "network", "rm", "-f", K8S_NET, check=False)
    run("podman", "network", "create", "--subnet", f"{K8S_SUBNET}.0/24", K8S_NET)
    pods = [Pod(sts, i, config_dir) for i in range(replicas)]
    ok = False
    try:
        for p in pods:
            p.start()
        for p in pods:
            wait(f"{p.name}'s liveness probe", lambda: p.probe("livenessProbe"), 60)
            wait(f"{p.name}'s readiness probe", lambda: p.probe("readinessProbe"), 60)
        print("probes: /-/healthy and /-/ready pass on all", replicas)

        def one_cluster():
            for p in pods:
                c = p.status()["cluster"]
                if c["status"] != "ready" or len(c["peers"]) != replicas:
                    return None
            return sorted(x["name"] for x in pods[0].status()["cluster"]["peers"])
        print("cluster peers:", wait("the replicas to form one cluster", one_cluster, 90))

        step("a changed ConfigMap is reloaded by the sidecar (POST /-/reload)")
        with open(config) as f:
            cfg = yaml.safe_load(f)
        cfg["receivers"].append({"name": "k8s-reload-marker"})
        with open(config, "w") as f:  # in place, as the kubelet's update is seen
            yaml.safe_dump(cfg, f, sort_keys=False)
        wait("every replica to load the changed ConfigMap",
             lambda: all("k8s-reload-marker" in p.status()["config"]["original"] for p in pods), 90)
        print("reloaded on all", replicas)
        ok = True
    finally:
        if not ok:
            for p in pods:
                for c in p.containers:
                    r = run("podman", "logs", "--tail", "30", c, check=False)
                    print(f"--- {c} logs\n{r.stdout}{r.stderr}")
        for p in pods:
            p.remove()
        run("podman", "network", "rm", "-f", K8S_NET, check=False)


# ---------------------------------------------------------------- compose

class HealthTimer:
    """Runs the containers' health checks every 2 s. Podman schedules them
    with systemd timers, and these machines run no systemd; the checks
    themselves are the images' and the compose file's own."""

    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            ids = run("podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                      check=False).stdout.split()
            for cid in ids:
                run("podman", "healthcheck", "run", cid, check=False)
            self.stop.wait(2)


class Stack:
    def __init__(self, env=None):
        self.env = dict(os.environ, **(env or {}))
        with open(os.path.join(STACK, "secrets", "herald_admin_password")) as f:
            self.admin_password = f.read().strip()
        self.ca = os.path.join(STACK, "secrets", "ca.pem")

    def compose(self, *args, check=True):
        return run("docker-compose", "-p", PROJECT, "-f", "docker-compose.yml", "-f", "compose.test.yml",
                   *args, cwd=STACK, check=check, env=self.env)

    def container(self, service):
        ids = run("podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                  "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        assert len(ids) == 1, f"{service}: {len(ids)} running containers"
        return ids[0]

    def address(self, service):
        info = json.loads(run("podman", "inspect", self.container(service)).stdout)[0]
        nets = info["NetworkSettings"]["Networks"]
        return next(iter(nets.values()))["IPAddress"]

    def healthy(self, service):
        info = json.loads(run("podman", "inspect", self.container(service)).stdout)[0]
        health = info["State"].get("Health") or info["State"].get("Healthcheck") or {}
        return health.get("Status") == "healthy"

    def wait_healthy(self, *services, deadline=120):
        for svc in services:
            wait(f"{svc} to turn healthy", lambda: self.healthy(svc), deadline)
            print(f"{svc}: healthy")

    def herald(self, path, service="herald", method="GET", body=None):
        """Herald's API as a person reaches it: TLS checked against the
        stack's CA under the certificate's name, basic auth as admin."""
        cmd = ["curl", "-sS", "--fail-with-body", "--max-time", "10", "--cacert", self.ca,
               "--resolve", f"herald:9093:{self.address(service)}", "-u", f"admin:{self.admin_password}",
               "-X", method, f"https://herald:9093{path}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        out = run(*cmd, stdin=None if body is None else json.dumps(body)).stdout
        return json.loads(out) if out.strip().startswith(("{", "[")) else out

    def post_alert(self, labels, service="herald"):
        now = datetime.now(timezone.utc)
        self.herald("/api/v2/alerts", service, "POST", [{
            "labels": labels, "annotations": {"summary": f"{labels['alertname']} from the stack test"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}])

    def prometheus_get(self, path):
        return json.loads(http_get(f"http://{self.address('prometheus')}:9090{path}")[1])

    def received(self, *markers):
        """What the sink received that mentions every one of `markers`, as
        (integration, state) pairs in arrival order."""
        got = json.loads(http_get(f"http://{self.address('sink')}:8080/received")[1])
        out = []
        for m in got["smtp"]:
            if all(k in m["subject"] or k in m["body"] for k in markers):
                out.append(("email", "resolved" if m["subject"].startswith("[RESOLVED]") else "firing"))
        for h in got["http"]:
            text = json.dumps(h["body"])
            if not all(k in text for k in markers):
                continue
            if h["path"] == "/slack":
                title = h["body"]["attachments"][0]["title"]
                out.append(("slack", "resolved" if title.startswith("[RESOLVED]") else "firing"))
            elif h["path"] == "/pagerduty":
                out.append(("pagerduty", "resolved" if h["body"]["event_action"] == "resolve" else "firing"))
            else:
                out.append((h["path"], "?"))
        return out

    def logs(self, services):
        for svc in services:
            r = run("docker-compose", "-p", PROJECT, "logs", "--tail", "40", svc, cwd=STACK, check=False,
                    env=self.env)
            print(f"--- {svc} logs\n{r.stdout}{r.stderr}")


TEST_CONFIG = os.path.join("herald", "herald.test.yml")


def write_test_files():
    """deploy/ as a user has it after init-secrets.sh, plus the test-only
    override and config: the shipped herald.yml with its SMTP server,
    Slack webhook and PagerDuty API pointed at the sink, without SMTP auth
    (the sink offers none) and a short group_interval, so that a resolved
    notification follows within seconds."""
    shutil.rmtree(STACK, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "deploy"), STACK,
                    ignore=shutil.ignore_patterns("secrets", ".terraform", "terraform"))
    env = dict(os.environ, HERALD_BIN=os.path.join(REPO, "target", "release", "herald"))
    if not os.path.exists(env["HERALD_BIN"]):
        env["HERALD_BIN"] = os.path.join(REPO, "target", "debug", "herald")
    run("./init-secrets.sh", cwd=STACK, env=env)
    with open(os.path.join(STACK, "secrets", "slack_webhook_url"), "w") as f:
        f.write("http://sink:8080/slack\n")
    with open(os.path.join(STACK, "herald", "herald.yml")) as f:
        cfg = yaml.safe_load(f)
    g = cfg["global"]
    g["smtp_smarthost"] = "sink:1025"
    g["smtp_require_tls"] = False
    g.pop("smtp_auth_username")
    g.pop("smtp_auth_password_file")
    g["pagerduty_url"] = "http://sink:8080/pagerduty"
    cfg["route"]["group_interval"] = "15s"
    # The reload check's route: a label of the test's own, to e-mail.
    cfg["route"]["routes"].insert(0, {"matchers": ['stacktest="reload"'], "receiver": "reload-test",
                                      "group_wait": "0s"})
    cfg["receivers"].append({"name": "reload-test", "email_configs": [{"to": "reload@example.com"}]})
    config_path = os.path.join(STACK, TEST_CONFIG)
    with open(config_path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    os.chmod(config_path, 0o644)
    with open(os.path.join(STACK, "compose.test.yml"), "w") as f:
        f.write(f"""services:
  herald:
    ports: !reset []
    volumes:
      - ./{TEST_CONFIG}:/etc/alertmanager/alertmanager.yml:ro
  herald-2:
    ports: !reset []
    volumes:
      - ./{TEST_CONFIG}:/etc/alertmanager/alertmanager.yml:ro
  prometheus:
    ports: !reset []
  sink:
    image: {SINK_IMAGE}
""")
    return config_path


def single_node_checks(config_path):
    s = Stack()
    step("docker-compose up herald prometheus node-exporter sink (no Grafana image on this machine)")
    s.compose("down", "-v", "--remove-orphans", check=False)
    timer = HealthTimer()
    ok = False
    try:
        s.compose("up", "-d", "--no-build", "herald", "prometheus", "node-exporter", "sink")
        s.wait_healthy("herald", "node-exporter", "prometheus")

        step("Prometheus reaches Herald over TLS with basic auth")
        def herald_active():
            ams = s.prometheus_get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            return [a["url"] for a in ams if a["url"].startswith("https://herald:9093/")]
        print("active Alertmanagers:", wait("Prometheus to discover Herald", herald_active, 60))

        def herald_scraped():
            targets = s.prometheus_get("/api/v1/targets")["data"]["activeTargets"]
            return [t for t in targets if t["labels"].get("job") == "herald" and t["health"] == "up"]
        wait("Prometheus to scrape Herald over TLS", herald_scraped, 90)
        print("Herald scraped: up")

        step("a stopped Node Exporter pages through Herald (InstanceDown, for: 1m)")
        marker = ("InstanceDown", "node-exporter:9100")
        t = time.monotonic()
        s.compose("stop", "node-exporter")
        want = {("email", "firing"), ("slack", "firing"), ("pagerduty", "firing")}
        got = wait("InstanceDown to reach e-mail, Slack and PagerDuty",
                   lambda: want <= set(s.received(*marker)) and s.received(*marker), 300, every=2)
        print(f"paged after {time.monotonic() - t:.0f} s: {got}")
        t = time.monotonic()
        s.compose("start", "node-exporter")
        want_resolved = {("email", "resolved"), ("slack", "resolved"), ("pagerduty", "resolved")}
        got = wait("InstanceDown's resolved notifications",
                   lambda: want_resolved <= set(s.received(*marker)) and s.received(*marker), 240, every=2)
        print(f"resolved after {time.monotonic() - t:.0f} s: {got}")
        firing = [n for n in got if n[1] == "firing"]
        assert len(firing) == 3, f"one firing notification per integration expected: {got}"

        step("Herald's data survives compose restart and down/up (named volume, UID 65534)")
        now = datetime.now(timezone.utc)
        sid = s.herald("/api/v2/silences", method="POST", body={
            "matchers": [{"name": "alertname", "value": "StackTestSilenced", "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=2)).isoformat(),
            "createdBy": "stack test", "comment": "must survive restarts"})["silenceID"]
        ls = run("podman", "exec", s.container("herald"), "ls", "-ln", "/alertmanager").stdout
        assert "herald.db" in ls and " 65534 " in ls, f"the data volume's files:\n{ls}"

        def silence_active():
            return s.herald(f"/api/v2/silence/{sid}")["status"]["state"] == "active"
        s.compose("restart", "herald")
        s.wait_healthy("herald")
        wait("the silence after compose restart", silence_active, 30)
        print("after restart: silence", sid, "active")
        s.compose("down")
        s.compose("up", "-d", "--no-build", "herald", "prometheus", "node-exporter", "sink")
        s.wait_healthy("herald")
        wait("the silence after compose down / up", silence_active, 30)
        print("after down/up: silence", sid, "active")

        step("compose kill -s HUP herald reloads the config; a broken one is refused")
        with open(config_path) as f:
            good = f.read()
        cfg = yaml.safe_load(good)
        next(r for r in cfg["receivers"] if r["name"] == "reload-test")["email_configs"][0]["to"] = \
            "reloaded@example.com"
        changed = yaml.safe_dump(cfg, sort_keys=False)
        # Written in place: the bind-mounted file keeps its inode, as an
        # editor's save in place does.
        with open(config_path, "w") as f:
            f.write(changed)
        s.compose("kill", "-s", "HUP", "herald")
        wait("Herald to load the changed config",
             lambda: "reloaded@example.com" in s.herald("/api/v2/status")["config"]["original"], 30)
        assert metric(s.herald("/metrics"), "alertmanager_config_last_reload_successful") == 1
        s.post_alert({"alertname": "StackTestReloaded", "stacktest": "reload"})
        wait("the changed route's e-mail", lambda: s.received("StackTestReloaded"), 60)
        with open(config_path, "w") as f:
            f.write(changed.replace("receiver: reload-test", "receiver: no-such-receiver"))
        s.compose("kill", "-s", "HUP", "herald")
        wait("Herald to refuse the broken config",
             lambda: metric(s.herald("/metrics"), "alertmanager_config_last_reload_successful") == 0, 30)
        status = s.herald("/api/v2/status")["config"]["original"]
        assert "reloaded@example.com" in status and "no-such-receiver" not in status, \
            "the running config is not the last good one"
        s.post_alert({"alertname": "StackTestAfterBrokenReload", "stacktest": "reload"})
        wait("an e-mail routed by the old config after the broken reload",
             lambda: s.received("StackTestAfterBrokenReload"), 60)
        got = json.loads(http_get(f"http://{s.address('sink')}:8080/received")[1])["smtp"]
        to = [m["to"] for m in got if "StackTestAfterBrokenReload" in m["subject"]]
        assert to == [["reloaded@example.com"]], f"sent to {to}"
        print("reloaded; the broken config refused, the last good one still routes")
        with open(config_path, "w") as f:
            f.write(good)
        ok = True
    finally:
        timer.stop.set()
        if not ok:
            s.logs(["herald", "prometheus", "node-exporter", "sink"])
        s.compose("down", "-v", "--remove-orphans", check=False)


def ha_checks():
    step("the HA profile: two Herald replicas over mutual TLS, one notification per group")
    s = Stack({"COMPOSE_PROFILES": "ha", "HERALD_CLUSTER_PEER": "herald-2:9094"})
    s.compose("down", "-v", "--remove-orphans", check=False)
    timer = HealthTimer()
    ok = False
    try:
        s.compose("up", "-d", "--no-build", "herald", "herald-2", "sink")
        s.wait_healthy("herald", "herald-2")

        def clustered():
            for svc in ["herald", "herald-2"]:
                c = s.herald("/api/v2/status", svc)["cluster"]
                if c["status"] != "ready" or len(c["peers"]) != 2:
                    return None
            return sorted(p["name"] for p in c["peers"])
        print("cluster peers:", wait("the two replicas to form a cluster", clustered, 90))

        # The gossip port speaks TLS only to holders of a certificate the
        # stack's CA signed. In TLS 1.3 the server checks the client's
        # certificate after the client's side of the handshake is done, so
        # the refusal shows on the first read.
        secrets = os.path.join(STACK, "secrets")
        gossip = (s.address("herald"), 9094)
        with_cert = tls_probe(gossip, os.path.join(secrets, "ca.pem"), "herald-cluster",
                              (os.path.join(secrets, "cluster.pem"), os.path.join(secrets, "cluster.key")))
        assert with_cert == "accepted", f"the replicas' certificate: {with_cert}"
        without = tls_probe(gossip, os.path.join(secrets, "ca.pem"), "herald-cluster", None)
        assert without.startswith("refused"), f"a client without a certificate: {without}"
        print(f"gossip: mutual TLS (a client without a certificate: {without})")

        # As Prometheus does, the alert goes to both replicas. Each
        # replica's dedup stage asks its notification log once per
        # integration before it sends or stays quiet (the second one a peer
        # timeout after the first): when both have asked three times, both
        # have decided.
        nodes = ["herald", "herald-2"]
        queries = {n: metric_sum(s.herald("/metrics", n), "alertmanager_nflog_queries_total") for n in nodes}
        labels = {"alertname": "StackTestHA", "severity": "critical", "instance": "ha-test"}
        for svc in nodes:
            s.post_alert(labels, svc)
        want = {("email", "firing"), ("slack", "firing"), ("pagerduty", "firing")}
        wait("the HA group's notifications", lambda: want <= set(s.received("StackTestHA")), 60)
        wait("both replicas to decide on the group", lambda: all(
            metric_sum(s.herald("/metrics", n), "alertmanager_nflog_queries_total") >= queries[n] + 3
            for n in nodes), 60)
        sent = sum(metric_sum(s.herald("/metrics", n), "alertmanager_notifications_total") for n in nodes)
        got = s.received("StackTestHA")
        assert sorted(got) == sorted(want) and sent == 3, \
            f"one notification per integration expected, got {got}; the replicas counted {sent}"
        print("one notification per integration:", got)
        ok = True
    finally:
        timer.stop.set()
        if not ok:
            s.logs(["herald", "herald-2", "sink"])
        s.compose("down", "-v", "--remove-orphans", check=False)


def main():
    image_checks()
    kubernetes_checks()
    step("deploy/ copied, init-secrets.sh, the test-only override")
    config_path = write_test_files()
    single_node_checks(config_path)
    ha_checks()
    print("containers: the image, the Kubernetes pods and the stack passed "
          "(Grafana not run: no image on this machine)")


if __name__ == "__main__":
    main()
