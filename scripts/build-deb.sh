#!/bin/sh
# build-deb.sh -- builds acdm_*.deb and acdm-dev_*.deb from the working tree in build/deb/ (a copy,
# so dpkg-buildpackage's output lands in build/deb/ and not beside the checkout).
# Usage: scripts/build-deb.sh [OUTDIR]      prints the paths of the two .deb files
#   ACDM_DEB_VERSION=0.1.0+x scripts/build-deb.sh   builds that version (a changelog entry in the copy)
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here/build/deb}"
ver="$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)"
src="$out/acdm-$ver"
rm -rf "$src"
mkdir -p "$src"
# the tracked files and new ones not ignored: what a commit of this tree would hold
(cd "$here" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src")
if [ -n "${ACDM_DEB_VERSION:-}" ]; then
  { printf 'acdm (%s) bookworm; urgency=medium\n\n  * Rebuilt as %s.\n\n -- acdm developers <acdm@localhost>  %s\n\n' \
      "$ACDM_DEB_VERSION" "$ACDM_DEB_VERSION" "$(date -R)"; cat "$here/debian/changelog"; } >"$src/debian/changelog"
  ver="$ACDM_DEB_VERSION"
fi
rm -f "$out"/acdm_*.deb "$out"/acdm-dev_*.deb "$out"/acdm_*.changes "$out"/acdm_*.buildinfo
(cd "$src" && dpkg-buildpackage -us -uc -b -j"${ACDM_DEB_JOBS:-2}" >"$out/build.log" 2>&1) || {
  tail -40 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 1
}
ls "$out"/acdm_"$ver"_*.deb "$out"/acdm-dev_"$ver"_*.deb
