#!/usr/bin/env bash
# npm run demo: replay a bundled sample of sshd traffic through the LG module with the dry-run
# firewall (no root, no kernel touched) and show what was banned and why. The sample's times
# are moved to the last minutes, so its bans are live now and land in the dry-run firewall.
set -euo pipefail
cd "$(dirname "$0")/.."
root=.demo
rm -rf "$root"
mkdir -p "$root/etc"
echo 'firewall = "dryrun"   # the demo never touches the kernel, even as root' > "$root/etc/watcher.toml"
now=$(date +%s)
lines=$(wc -l < scripts/demo-auth.log)
i=0
while IFS= read -r line; do
  stamp=$(LC_ALL=C date -d "@$((now - lines + i))" '+%b %e %H:%M:%S')
  printf '%s%s\n' "$stamp" "${line:15}"
  i=$((i + 1))
done < scripts/demo-auth.log > "$root/auth.log"

echo "== rules test: the log's format, which rule matched how often, the hosts counted"
dist/watcher --root "$root" rules test LG "$root/auth.log"
echo
echo "== inject --direct: replay into the LG database, dry-run firewall"
dist/watcher --root "$root" inject LG --direct < "$root/auth.log"
echo
echo "== what a real firewall would have been told ($root/var/log/firewall-dryrun.log)"
cat "$root/var/log/firewall-dryrun.log"
echo
echo "== report: what watcher did"
dist/watcher --root "$root" report --since 1h
echo
echo "Next: dist/watcher rules test LG /var/log/auth.log, dist/watcher --help"
