#!/usr/bin/env bash
# The whole test suite, as README's second command runs it. As root on Debian/Ubuntu it first
# installs the system packages the tests need when they are missing; then it type-checks,
# builds dist/watcher (the integration tests run the real binary) and runs bun test.
set -euo pipefail
cd "$(dirname "$0")/.."
bun=node_modules/.bin/bun

# package:command pairs the tests use
needs=(coreutils:mkfifo)
missing=()
for pair in "${needs[@]}"; do
  command -v "${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing test dependencies: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "missing packages for the tests: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
fi

node_modules/.bin/tsc -p .
"$bun" run build >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$bun" test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -n1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -n1 | grep -Eo '[0-9]+' || echo 0)
echo "${passed} passed, ${failed} failed"
exit "$status"
