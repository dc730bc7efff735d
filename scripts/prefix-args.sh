# Sourced by install.sh and uninstall.sh: their options, --prefix DIR (default /opt/watcher) and
# --link, and the check that they run as root. Sets $prefix and $link: with --link (implied when
# --prefix is not given) they also install or remove what lives outside the prefix: the link
# /usr/local/bin/watcher, the systemd unit and the logrotate snippet.
prefix=/opt/watcher
link=true
explicit_link=false
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "$0: --prefix needs a folder" >&2; exit 2; }
              prefix=$2; $explicit_link || link=false; shift 2 ;;
    --link) link=true; explicit_link=true; shift ;;
    *) echo "usage: $0 [--prefix DIR] [--link]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "$(basename "$0"): run as root" >&2; exit 1; }
