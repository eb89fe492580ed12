#!/bin/sh
# mkroot.sh -- a clean Debian 12 (bookworm) root for the package test, made once with debootstrap
# and kept as a tarball (default build/pkgtest/bookworm-root.tar); later runs reuse it.
# The mirror is this machine's own (its apt sources), or $ACDM_DEBIAN_MIRROR.
# Usage: tests/package/mkroot.sh [TARBALL]     prints the tarball's path
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
tarball="${1:-$here/build/pkgtest/bookworm-root.tar}"
[ -s "$tarball" ] && { echo "$tarball"; exit 0; }
mirror="${ACDM_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # deb822 sources (Debian 12's default) or the one-line format
  mirror="$(sed -n 's/^URIs: *\([^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
  [ -n "$mirror" ] || mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\)\/* bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)"
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
work="$(dirname "$tarball")/root.mk.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
echo "package-test: debootstrap bookworm from $mirror (once; cached in $tarball)" >&2
debootstrap --variant=minbase bookworm "$work" "$mirror" >"$work.log" 2>&1 || {
  tail -20 "$work.log" >&2; exit 1; }
rm -f "$work.log"
# the same suites as this machine: bookworm, bookworm-updates, bookworm-security
sec="$(echo "$mirror" | sed 's|/debian$|/debian-security|')"
cat >"$work/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $sec bookworm-security main
SRC
# no service is started by a package's maintainer scripts in the root
printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
chmod 755 "$work/usr/sbin/policy-rc.d"
echo 'Acquire::Check-Valid-Until "false";' >"$work/etc/apt/apt.conf.d/99acdm-pkgtest"
cp /etc/resolv.conf "$work/etc/resolv.conf"
chroot "$work" apt-get -qq update >/dev/null
chroot "$work" apt-get -qq clean
tar -C "$work" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"
