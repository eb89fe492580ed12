#!/bin/sh
# check-layers.sh -- the core's layering rule (docs/architecture.md, "Layers"): a file in
# core/<folder>/ includes only from its own folder and the folders below it. The plugin ABI
# (core/include/acdm/) may be included from anywhere. Run by `make test`; exits 1 on a break.
set -u
cd "$(dirname "$0")/.." || exit 1
# bottom to top
LAYERS="base config store model net auth plugins engine reports api cmd"

rank() {
  i=0
  for l in $LAYERS; do
    [ "$l" = "$1" ] && { echo "$i"; return; }
    i=$((i + 1))
  done
  echo -1
}

bad=0
for f in core/*/*.c core/*/*.h; do
  dir=${f#core/}; dir=${dir%%/*}
  case "$dir" in include|ui) continue ;; esac
  me=$(rank "$dir")
  if [ "$me" -lt 0 ]; then
    echo "layers: $f: folder core/$dir/ is not a layer (add it to LAYERS in scripts/check-layers.sh and to docs/architecture.md)"
    bad=1; continue
  fi
  # quoted includes only: "folder/file.h" (a bare "file.h" is the file's own folder)
  for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
    case "$inc" in
      acdm/*) continue ;;                  # the plugin ABI, core/include/acdm/
      */*) to=${inc%%/*} ;;
      *) continue ;;                       # same folder
    esac
    them=$(rank "$to")
    if [ "$them" -lt 0 ]; then
      echo "layers: $f includes \"$inc\": core/$to/ is not a layer"
      bad=1
    elif [ "$them" -gt "$me" ]; then
      below=$(echo "$LAYERS" | cut -d' ' -f1-$((me + 1)))
      echo "layers: $f includes \"$inc\": $to is above $dir (layer $((them + 1)) > $((me + 1))); $dir may include only: $below"
      bad=1
    fi
  done
done
# the store backend is one file: nothing else talks SQLite (reads, exports and backups go
# through store/store.h, so a PostgreSQL backend replaces exactly store_sqlite.c)
for f in $(grep -l '#[[:space:]]*include[[:space:]]*<sqlite3.h>' core/*/*.c core/*/*.h 2>/dev/null); do
  [ "$f" = core/store/store_sqlite.c ] && continue
  echo "layers: $f includes <sqlite3.h>: only core/store/store_sqlite.c may (use store/store.h)"
  bad=1
done
[ "$bad" -eq 0 ] || { echo "layers: FAILED (bottom to top: $LAYERS)"; exit 1; }
echo "layers: ok (bottom to top: $LAYERS)"
