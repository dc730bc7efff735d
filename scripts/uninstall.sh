#!/usr/bin/env bash
# Remove watcher: stop it, remove its firewall table/sets and chains and the prefix (default
# /opt/watcher), databases included; with --link (implied without --prefix) also the unit, the
# logrotate snippet, the rsyslog snippet and the link, each only if it is this prefix's.
#   scripts/uninstall.sh [--prefix /opt/watcher] [--link]
set -euo pipefail
. "$(dirname "$0")/prefix-args.sh"
# a file outside the prefix that names it is this install's
ours() { [ -e "$1" ] && grep -qF "$prefix/" "$1"; }
if $link && ours /etc/systemd/system/watcher.service; then
  systemctl disable --now watcher 2>/dev/null || true
  rm -f /etc/systemd/system/watcher.service
  systemctl daemon-reload 2>/dev/null || true
fi
if [ -x "$prefix/bin/watcher" ]; then
  "$prefix/bin/watcher" --root "$prefix" stop --remove-firewall
fi
if $link; then
  ! ours /etc/rsyslog.d/30-watcher.conf || rm -f /etc/rsyslog.d/30-watcher.conf
  ! ours /etc/logrotate.d/watcher || rm -f /etc/logrotate.d/watcher
  [ "$(readlink /usr/local/bin/watcher 2>/dev/null)" != "$prefix/bin/watcher" ] || rm -f /usr/local/bin/watcher
fi
rm -rf "$prefix"
echo "watcher removed (restart your logger if it had a watcher snippet)"
