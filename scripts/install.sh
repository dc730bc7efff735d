#!/usr/bin/env bash
# Install watcher under a prefix (default /opt/watcher): the binary and its folders; with
# --link (implied without --prefix) also the link /usr/local/bin/watcher, the systemd unit
# where systemd runs and /etc/logrotate.d/watcher. With --prefix alone nothing is written
# outside the prefix. Run from a checkout as root:
#   scripts/install.sh [--prefix /opt/watcher] [--link]
# Existing configuration, lists and databases under the prefix are kept.
set -euo pipefail
. "$(dirname "$0")/prefix-args.sh"
cd "$(dirname "$0")/.."
[ -x dist/watcher ] || npm run build

install -d -m 0755 "$prefix/bin" "$prefix/etc" "$prefix/rules" "$prefix/var"
install -m 0755 dist/watcher "$prefix/bin/watcher"
install -m 0644 README.md LICENSE "$prefix/"
[ -e "$prefix/etc/watcher.toml" ] || cat > "$prefix/etc/watcher.toml" <<'TOML'
# watcher settings: every key has a default (see README.md, "Configuration")
firewall = "auto"            # nftables where it exists, else ipset + iptables

[modules.LG]                 # logins (OpenSSH)
enabled = true

[modules.MX]                 # mail transport (Postfix)
enabled = false

[modules.MB]                 # mailboxes (Dovecot, DBmail, Postfix SASL)
enabled = false

[dynload.lists.spamhaus]     # Spamhaus DROP: hijacked networks, refreshed hourly by start
enabled = true
TOML
[ -e "$prefix/etc/whitelist" ] || printf '# addresses and networks never banned, one a line (IPv4/IPv6, CIDR)\n# 192.0.2.0/24\n' > "$prefix/etc/whitelist"
[ -e "$prefix/etc/blacklist" ] || printf '# addresses and networks banned at sight, one a line\n' > "$prefix/etc/blacklist"

start="$prefix/bin/watcher start"
if $link; then
  ln -sf "$prefix/bin/watcher" /usr/local/bin/watcher
  if [ -d /etc/logrotate.d ]; then
    sed "s#@PREFIX@#$prefix#g" scripts/logrotate > /etc/logrotate.d/watcher
  fi
  if [ -d /run/systemd/system ]; then
    sed "s#@PREFIX@#$prefix#g" scripts/watcher.service > /etc/systemd/system/watcher.service
    systemctl daemon-reload
    echo "systemd unit installed: systemctl enable --now watcher"
    start="systemctl enable --now watcher   (or: watcher start)"
  fi
  watcher=watcher
else
  watcher="$prefix/bin/watcher"
  echo "nothing written outside $prefix (--link adds /usr/local/bin/watcher, the systemd unit and the logrotate snippet)"
fi
cat <<MSG
watcher installed in $prefix (root of its configuration, rules and databases).
Next:
  1. whitelist your own networks in $prefix/etc/whitelist
  2. feed it: $watcher syslog-config rsyslog > /etc/rsyslog.d/30-watcher.conf && systemctl restart rsyslog
     (or syslog-ng; or a journal/file source in $prefix/etc/watcher.toml)
  3. start it: $start
  4. check: $watcher status
MSG
