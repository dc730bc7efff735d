# Sourced by install.sh and uninstall.sh: their one option, --prefix DIR (default /opt/watcher),
# and the check that they run as root. Sets $prefix.
prefix=/opt/watcher
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    *) echo "usage: $0 [--prefix DIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "$(basename "$0"): run as root" >&2; exit 1; }
