# shellcheck shell=dash
# The wave's copy on a target, as root, in DEST's directory (which the nova user may write).
# rsync writes it as ./data inside a private directory of the transfer (this script, rsync's
# --rsync-path: the rsync server starts in that directory, checked, and never resolves a name
# in DEST's directory); then check.sh enters the same directory, verifies ./data and renames
# it into place (place). dash runs it after functions.sh (scripts.py): no single quotes.
# $1 the private directory, then the rsync server command (its last word: the destination
# rsync was given, this directory again, replaced by ./data).
enter "$1" || { echo "$why" >&2; exit 1; }
shift
n=$# i=0
for word; do
  i=$((i + 1))
  if [ "$i" = "$n" ]; then set -- "$@" ./data; else set -- "$@" "$word"; fi
  shift
done
exec "$@"
