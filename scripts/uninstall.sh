#!/usr/bin/env bash
# Remove watcher: stop it, remove its firewall table/sets and chains, the unit, the link and
# the prefix (default /opt/watcher), databases included.
#   sudo scripts/uninstall.sh [--prefix /opt/watcher]
set -euo pipefail
. "$(dirname "$0")/prefix-args.sh"
if [ -e /etc/systemd/system/watcher.service ]; then
  systemctl disable --now watcher 2>/dev/null || true
  rm -f /etc/systemd/system/watcher.service
  systemctl daemon-reload 2>/dev/null || true
fi
if [ -x "$prefix/bin/watcher" ]; then
  "$prefix/bin/watcher" --root "$prefix" stop --remove-firewall
fi
rm -f /etc/rsyslog.d/30-watcher.conf
[ "$(readlink /usr/local/bin/watcher 2>/dev/null)" = "$prefix/bin/watcher" ] && rm -f /usr/local/bin/watcher
rm -rf "$prefix"
echo "watcher removed (restart your logger if it had a watcher snippet)"
