#!/bin/sh
# Installs the Debian packages acdm needs to build, run and test; idempotent.
# Usage: scripts/deps.sh [run|test|bench|package]   (test also pulls the real peers the tests start;
# package: what `make deb` and `make package-test` need: debhelper, debootstrap)
set -eu
want="build-essential pkg-config libwebsockets-dev libjansson-dev libcurl4-openssl-dev \
libsqlite3-dev libuv1-dev libssl-dev libxlsxwriter-dev libhpdf-dev sqlite3 curl python3"
case "${1:-run}" in
  test) want="$want check cppcheck python3-yaml prometheus chromium fonts-dejavu-core fonts-liberation nodejs npm" ;;
  package) want="$want debhelper debootstrap" ;;
  bench) want="$want check cppcheck python3-yaml prometheus wrk bc chromium fonts-dejavu-core fonts-liberation nodejs npm" ;;
esac
# Each channel plugin lists what it needs in channels/<name>/deps: a line "run: pkg..." (to build
# and run it) and "test: pkg..." (the real peers its tests start); bench takes both.
here="$(dirname "$0")/.."
for f in "$here"/channels/*/deps; do
  [ -f "$f" ] || continue
  want="$want $(sed -n 's/^run://p' "$f")"
  case "${1:-run}" in test|bench) want="$want $(sed -n 's/^test://p' "$f")" ;; esac
done
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
  # also satisfied by an installed package that Provides it (e.g. NodeSource's nodejs provides npm)
  dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | grep "^install ok installed|" |
    cut -d'|' -f2 | tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | grep -qx "$p" && continue
  missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "acdm: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y $missing >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y $missing
  }
else
  echo "acdm: missing Debian packages:$missing" >&2
  echo "acdm: run as root, or: sudo apt-get install -y$missing" >&2
  exit 1
fi
