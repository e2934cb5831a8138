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
2. deploy/ copied to WORKDIR/stack, init-secrets.sh, then `docker-compose up`
   of herald, prometheus and node-exporter (Grafana's image cannot be had
   here): all three turn healthy through their own health checks, and
   Prometheus reaches Herald over TLS with basic auth, as an Alertmanager
   and as a scrape target.
Each wait has a deadline; a failure prints the containers' logs.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = sys.argv[1]
STACK = os.path.join(WORK, "stack")
PROJECT = "herald-stack-test"
IMAGE = "localhost/herald:local"

# prom/alertmanager's image is the busybox base (about 4.5 MB) plus the
# alertmanager and amtool binaries; Herald needs, besides its one binary,
# the C library it links, the CA bundle and the time zone database. The
# bound is Alertmanager's image as sid's binaries of the same release make
# it, plus 12 MB for those.
AM_BINARIES = ["prometheus-alertmanager", "amtool"]
BUSYBOX_BASE_MB = 4.5
HERALD_NEEDS_MB = 12


def step(msg):
    print(f"== {msg}", flush=True)


def run(*cmd, check=True, capture=True, env=None, cwd=None, timeout=1800):
    r = subprocess.run(cmd, capture_output=capture, text=True, env=env, cwd=cwd, timeout=timeout)
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


def compose(*args, check=True):
    return run("docker-compose", "-p", PROJECT, "-f", "docker-compose.yml", "-f", "compose.test.yml",
               *args, cwd=STACK, check=check)


def container(service):
    ids = run("podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
              "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    assert len(ids) == 1, f"{service}: {len(ids)} containers"
    return ids[0]


def address(service):
    info = json.loads(run("podman", "inspect", container(service)).stdout)[0]
    nets = info["NetworkSettings"]["Networks"]
    return next(iter(nets.values()))["IPAddress"]


def healthy(service):
    info = json.loads(run("podman", "inspect", container(service)).stdout)[0]
    health = info["State"].get("Health") or info["State"].get("Healthcheck") or {}
    return health.get("Status") == "healthy"


def prometheus_get(path):
    out = run("curl", "-sf", f"http://{address('prometheus')}:9090{path}").stdout
    return json.loads(out)


def stack_checks():
    step("deploy/ copied, init-secrets.sh")
    shutil.rmtree(STACK, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "deploy"), STACK,
                    ignore=shutil.ignore_patterns("secrets", ".terraform", "terraform"))
    env = dict(os.environ, HERALD_BIN=os.path.join(REPO, "target", "release", "herald"))
    if not os.path.exists(env["HERALD_BIN"]):
        env["HERALD_BIN"] = os.path.join(REPO, "target", "debug", "herald")
    run("./init-secrets.sh", cwd=STACK, env=env)
    # The test-only override: no published ports (the test reaches the
    # containers at their bridge addresses, so nothing on the machine's own
    # ports gets in the way).
    with open(os.path.join(STACK, "compose.test.yml"), "w") as f:
        f.write("services:\n"
                "  herald:\n    ports: !reset []\n"
                "  prometheus:\n    ports: !reset []\n")

    step("docker-compose up herald prometheus node-exporter (no Grafana image on this machine)")
    compose("down", "-v", "--remove-orphans", check=False)
    timer = HealthTimer()
    ok = False
    try:
        compose("up", "-d", "--no-build", "herald", "prometheus", "node-exporter")
        for svc in ["herald", "node-exporter", "prometheus"]:
            wait(f"{svc} to turn healthy", lambda: healthy(svc), 120)
            print(f"{svc}: healthy")

        step("Prometheus reaches Herald over TLS with basic auth")
        def herald_active():
            ams = prometheus_get("/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            return [a["url"] for a in ams if a["url"].startswith("https://herald:9093/")]
        print("active Alertmanagers:", wait("Prometheus to discover Herald", herald_active, 60))

        def herald_scraped():
            targets = prometheus_get("/api/v1/targets")["data"]["activeTargets"]
            return [t for t in targets if t["labels"].get("job") == "herald" and t["health"] == "up"]
        wait("Prometheus to scrape Herald over TLS", herald_scraped, 90)
        print("Herald scraped: up")
        ok = True
    finally:
        timer.stop.set()
        if not ok:
            for svc in ["herald", "prometheus", "node-exporter"]:
                r = run("docker-compose", "-p", PROJECT, "logs", "--tail", "40", svc, cwd=STACK, check=False)
                print(f"--- {svc} logs\n{r.stdout}{r.stderr}")
        compose("down", "-v", "--remove-orphans", check=False)


def main():
    image_checks()
    stack_checks()
    print("containers: the image and the stack passed (Grafana not run: no image on this machine)")


if __name__ == "__main__":
    main()
