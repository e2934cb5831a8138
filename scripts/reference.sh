#!/usr/bin/env bash
# Sets up the current Alertmanager release as the differential tests' oracle,
# privately: Debian's sid suite ships Alertmanager 0.33.1 (and Prometheus
# 3.5.3, the Alertmanager source with its OpenAPI spec and templates, and the
# Go toolchain its acceptance suites build with). Nothing is installed on the
# machine: a private apt configuration (its own sources list, lists and cache)
# downloads the packages and `dpkg -x` unpacks them under
# target/am-current/root. Idempotent: a second run with everything in place
# does nothing.
#
# Debian's Alertmanager reads its default templates and UI from
# /usr/share/prometheus/alertmanager, which holds Debian 12's 0.25 files when
# that release is installed system-wide (the tests about 0.25 itself need it).
# So the binaries are run through wrappers (bin/alertmanager, bin/amtool) that
# bind-mount 0.33.1's own folder over that path in a private mount namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/target/am-current"
root="$dest/root"
# Packages to unpack; extra ones (Go libraries of the acceptance suites) can
# be added by the caller in REFERENCE_EXTRA_PACKAGES.
# promtool (3.5.3) checks the stack's Prometheus config and rules, and
# prometheus-node-exporter is the Node Exporter of the container stack's
# stand-in image (tests/containers/).
pkgs=(prometheus-alertmanager prometheus promtool prometheus-node-exporter golang-github-prometheus-alertmanager-dev ${REFERENCE_EXTRA_PACKAGES:-})
stamp="$dest/.unpacked-$(echo "${pkgs[*]}" | md5sum | cut -c1-12)"
if ! { [ -f "$stamp" ] && [ -x "$dest/bin/alertmanager" ]; }; then

mkdir -p "$dest"/{lists/partial,cache/archives/partial,debs,bin} "$root"
# The machine's own Debian mirror, sid suite.
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
uri=${uri:-http://deb.debian.org/debian}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" >"$dest/sources.list"
cat >"$dest/apt.conf" <<CONF
Dir::Etc::SourceList "$dest/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$dest/lists";
Dir::Cache "$dest/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG="$dest/apt.conf"
echo "reference: fetching sid package lists from $uri"
apt-get update -qq
(cd "$dest/debs" && apt-get download -qq "${pkgs[@]}")
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$root"; done

ver=$("$root/usr/bin/prometheus-alertmanager" --version 2>&1 | head -1)
case "$ver" in
  *"version 0.33"*) ;;
  *) echo "reference: expected Alertmanager 0.33.x from sid, got: $ver" >&2; exit 1 ;;
esac

for prog in alertmanager:prometheus-alertmanager amtool:amtool prometheus:prometheus; do
  name=${prog%%:*} bin=${prog#*:}
  cat >"$dest/bin/$name" <<WRAP
#!/bin/sh
# Runs sid's $bin with its own /usr/share/prometheus/alertmanager
# (see scripts/reference.sh).
[ -d /usr/share/prometheus/alertmanager ] || mkdir -p /usr/share/prometheus/alertmanager
exec unshare --mount --propagation private sh -c 'mount --bind "\$0/usr/share/prometheus/alertmanager" /usr/share/prometheus/alertmanager && exec "\$0/usr/bin/$bin" "\$@"' "$root" "\$@"
WRAP
  chmod +x "$dest/bin/$name"
done
"$dest/bin/alertmanager" --version 2>&1 | head -1
touch "$stamp"
fi

# With REFERENCE_GO=1: also sid's Go and every Go library the source package
# depends on (recursively), unpacked into gopath-root, for the acceptance
# suites (scripts/acceptance.sh).
if [ "${REFERENCE_GO:-}" = 1 ] && [ ! -f "$dest/.go-unpacked" ]; then
  export APT_CONFIG="$dest/apt.conf"
  mkdir -p "$dest/godebs" "$dest/gopath-root"
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances golang-github-prometheus-alertmanager-dev 2>/dev/null \
    | grep -E '^golang-.*-dev$' | sort -u >"$dest/go-packages.txt"
  (cd "$dest/godebs" && apt-get download -qq $(cat "$dest/go-packages.txt") golang-1.27-go golang-1.27-src)
  for deb in "$dest"/godebs/*.deb; do dpkg -x "$deb" "$dest/gopath-root"; done
  "$dest/gopath-root/usr/lib/go-1.27/bin/go" version
  touch "$dest/.go-unpacked"
fi
