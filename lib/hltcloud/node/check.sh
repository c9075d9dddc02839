# shellcheck shell=dash
# The wave's check on a target, after rsync_into.sh: enters the same private directory,
# verifies ./data and renames it into place (place). Exit 4 or 5: the copy was bad (and is
# gone, with the directory); 3: it could not be checked or placed. dash runs it after
# functions.sh (scripts.py): no single quotes.
# $1 the private directory, $2 DEST, $3 size, $4 digest ("" = size only), $5 checksum tool,
# $6 its name
tmp=$1 dest=$2 size=$3 sum=$4 tool=$5 algo=$6 inside=
clean() { if [ -n "$inside" ]; then rm -f -- ./data; leave "$tmp"; fi; }
trap clean EXIT
trap "exit 3" HUP INT TERM
at "${tmp%/*}" || { echo "$why" >&2; exit 3; }
into "${tmp##*/}" || { echo "refusing: $tmp is not a private directory of root" >&2; exit 3; }
inside=1
if [ ! -f ./data ] || [ -L ./data ] || [ "$(stat -c %u:%h ./data)" != 0:1 ]; then
  echo "refusing: $tmp/data is not a regular file of root" >&2; exit 4
fi
s=$(stat -c %s ./data) || exit 3
if [ "$s" != "$size" ]; then echo "size $s, expected $size" >&2; exit 4; fi
if [ -n "$sum" ]; then
  h=$("$tool" ./data) || exit 3
  if [ "${h%% *}" != "$sum" ]; then echo "$algo checksum mismatch" >&2; exit 5; fi
fi
place data "${dest##*/}" "$dest" || { echo "$why" >&2; exit 3; }
