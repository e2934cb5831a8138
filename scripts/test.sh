#!/usr/bin/env bash
# Runs Herald's whole test suite on a fresh Debian machine. It installs what
# the tests need (the real Alertmanager and Prometheus for the differential
# and end-to-end tests, Python's jsonschema for the OpenAPI checks) and fails
# loudly if it cannot: no test is skipped for a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -x /usr/bin/prometheus-alertmanager ] || need_pkgs+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || need_pkgs+=(prometheus)
[ -f /usr/share/gocode/src/github.com/prometheus/alertmanager/api/v2/restapi/embedded_spec.go ] || need_pkgs+=(golang-github-prometheus-alertmanager-dev)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi
# Debian starts the packaged services; the tests start their own copies on
# free ports, so the system ones only get in the way.
for svc in prometheus-alertmanager prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

python3 -c 'import jsonschema, yaml, aiosmtpd' 2>/dev/null || python3 -m pip install --quiet jsonschema pyyaml aiosmtpd

cargo build --locked --all-targets
# Benches are built above but not run: `cargo bench --bench compare` measures.
cargo test --locked --lib --bins --tests -- --test-threads=2
python3 tests/openapi_check.py target/debug/herald
