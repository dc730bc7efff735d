#!/usr/bin/env bash
# The whole test suite, as README's second command runs it (`npm test`). As root on Debian/Ubuntu it first
# installs the system packages the tests need when they are missing; then it type-checks,
# builds dist/watcher (the integration tests run the real binary) and runs bun test.
set -euo pipefail
cd "$(dirname "$0")/.."
bun=node_modules/.bin/bun

# the suite needs root (its firewall tests create network namespaces): as root it runs as it
# is (a machine without sudo included), else again under sudo where there is one
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -- bash "$PWD/scripts/test.sh" "$@"; fi
  echo "the suite needs root: its firewall tests create network namespaces, and there is no sudo here (run npm test as root)." >&2
  echo "Without root, the unit tests alone: node_modules/.bin/bun test test/core test/modules test/rules" >&2
  exit 1
fi

# package:command pairs the tests use
needs=(coreutils:mkfifo coreutils:stdbuf iproute2:ip nftables:nft ipset:ipset iptables:iptables iptables:ip6tables
       openssh-server:sshd openssh-client:ssh openssh-client:ssh-keygen rsyslog:rsyslogd util-linux:unshare
       redis-server:redis-server redis-tools:redis-cli fail2ban:fail2ban-client dropbear-bin:dropbear bash:bash zsh:zsh
       nginx:nginx dovecot-imapd:/usr/lib/dovecot/imap curl:curl openssl:openssl
       vsftpd:/usr/sbin/vsftpd bind9:/usr/sbin/named python3:python3 logrotate:logrotate)
missing=()
for pair in "${needs[@]}"; do
  command -v "${pair#*:}" >/dev/null 2>&1 || missing+=("${pair%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing packages for the tests: ${missing[*]} (install them, then run again)" >&2
    exit 1
  fi
  echo "installing test dependencies: ${missing[*]}"
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt-get update
  # the tests start their own sshd, rsyslog, redis-server, nginx, dovecot, vsftpd and named: keep apt from starting the system's
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; own_policy=true; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
  if $own_policy; then rm -f "$policy"; fi
fi

node_modules/.bin/tsc -p .
"$bun" run build >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# a test's time limit only catches hangs (tests wait for conditions): bun's default of 5 s is a
# guess about speed that a loaded 2-core machine misses, and bunfig.toml cannot change it
"$bun" test --timeout 180000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# a long run's tail is all some CI shows: say again why each test failed, right above the count
awk '/^\((pass|skip|todo)\) /{n=0; next} /^\(fail\) /{if (!seen[$0]++) {print "--- why it failed:"; for (i=1;i<=n;i++) print buf[i]; print}; n=0; next} {if (n<80) buf[++n]=$0; else {for (i=1;i<80;i++) buf[i]=buf[i+1]; buf[80]=$0}}' "$log"
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -n1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -n1 | grep -Eo '[0-9]+' || echo 0)
echo "${passed} passed, ${failed} failed"
exit "$status"
