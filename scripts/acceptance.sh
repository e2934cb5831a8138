#!/usr/bin/env bash
# Runs Alertmanager's own acceptance suites (test/with_api_v2 and test/cli of
# the reference release's source package) against Herald.
#
# They build offline in GOPATH mode with sid's Go and the Go libraries the
# source package depends on, all unpacked privately by scripts/reference.sh
# (nothing is installed on the machine). The framework execs
# $GOPATH/bin/prometheus-alertmanager and $GOPATH/bin/amtool: here the first
# is a wrapper that starts Herald, the second the reference amtool.
#
#   scripts/acceptance.sh [herald-binary] [go test -run regexp]
#   ACCEPTANCE_TARGET=alertmanager scripts/acceptance.sh   # the suites against 0.33.1 itself
#
# Tests Herald cannot pass by design are listed in tests/acceptance-expected-failures.txt
# (with the reason, also in docs/compatibility.md); any other failure, and
# any listed test that passes, fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
herald=$(realpath "${1:-target/debug/herald}")
run=${2:-.}
REFERENCE_GO=1 scripts/reference.sh
ref="$repo/target/am-current"
gp="$ref/gopath"
mkdir -p "$gp/bin"
ln -sfn "$ref/gopath-root/usr/share/gocode/src" "$gp/src"
# Replace, never write through: in the other mode these are symlinks to the
# reference's own wrappers.
rm -f "$gp/bin/prometheus-alertmanager"
if [ "${ACCEPTANCE_TARGET:-herald}" = alertmanager ]; then
  ln -sfn "$ref/bin/alertmanager" "$gp/bin/prometheus-alertmanager"
else
  cat >"$gp/bin/prometheus-alertmanager" <<WRAP
#!/usr/bin/env bash
# Alertmanager's acceptance framework starts "prometheus-alertmanager": start
# Herald with the same flags, minus Debian's --web.ui-path (Herald serves its
# own UI).
args=()
while [ \$# -gt 0 ]; do
  case "\$1" in
    --web.ui-path) shift 2 ;;
    --web.ui-path=*) shift ;;
    *) args+=("\$1"); shift ;;
  esac
done
exec "$herald" "\${args[@]}"
WRAP
  chmod +x "$gp/bin/prometheus-alertmanager"
fi
# Herald reports the release it implements (0.34.0) in /api/v2/status; the
# suites' amtool is 0.33.1, which then prints a version warning that the
# suites' exact-output checks do not expect. amtool 0.34 prints none.
rm -f "$gp/bin/amtool"
if [ "${ACCEPTANCE_TARGET:-herald}" = alertmanager ]; then
  ln -sfn "$ref/bin/amtool" "$gp/bin/amtool"
else
  printf '#!/bin/sh\nexec "%s" --no-version-check "$@"\n' "$ref/bin/amtool" >"$gp/bin/amtool"
  chmod +x "$gp/bin/amtool"
fi

export GOROOT="$ref/gopath-root/usr/lib/go-1.27" GOPATH="$gp" GO111MODULE=off \
  GOCACHE="$ref/gocache" GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0
export PATH="$GOROOT/bin:$PATH"
cd "$gp/src/github.com/prometheus/alertmanager"
out="$ref/acceptance.log"
set +e
go test -count=1 -timeout 20m -run "$run" -v ./test/with_api_v2/acceptance/ ./test/cli/acceptance/ >"$out" 2>&1
rc=$?
set -e
failed=$(grep -E '^\s*--- FAIL: ' "$out" | sed -E 's/^\s*--- FAIL: ([^ ]+).*/\1/' | sort -u || true)
passed=$(grep -cE '^\s*--- PASS: ' "$out" || true)
expected="$repo/tests/acceptance-expected-failures.txt"
want=$(grep -vE '^\s*(#|$)' "$expected" 2>/dev/null | awk '{print $1}' | sort -u || true)
echo "acceptance: $passed passed, $(echo -n "$failed" | grep -c . || true) failed (log: $out)"
# Both suites must have run (a build or environment failure prints no test).
for pkg in test/with_api_v2/acceptance test/cli/acceptance; do
  grep -qE "^(ok|FAIL|---)?\s*.*github.com/prometheus/alertmanager/$pkg" "$out" \
    || { echo "acceptance: $pkg did not run"; tail -20 "$out"; exit 1; }
done
[ "$passed" -gt 0 ] || { echo "acceptance: no test passed"; tail -20 "$out"; exit 1; }
[ "${ACCEPTANCE_TARGET:-herald}" = alertmanager ] && { [ $rc -eq 0 ] || { echo "$failed"; exit 1; }; exit 0; }
unexpected=$(comm -23 <(echo "$failed") <(echo "$want") | grep . || true)
fixed=$(comm -13 <(echo "$failed") <(echo "$want") | grep . || true)
[ "$run" = . ] || fixed=""
if [ -n "$unexpected" ]; then echo "acceptance: unexpected failures:"; echo "$unexpected"; fi
if [ -n "$fixed" ]; then echo "acceptance: listed as failing but passed (update $expected):"; echo "$fixed"; fi
if grep -qE '^(FAIL|ok)\s.*\[build failed\]|cannot find package|^# ' "$out"; then echo "acceptance: the suites did not build"; tail -20 "$out"; exit 1; fi
[ -z "$unexpected" ] && [ -z "$fixed" ]
