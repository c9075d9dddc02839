# shellcheck shell=dash
# The state of one host's cached image, for openstack-prefill-cache --check (and the skip
# check of a prefill): read only, changes nothing, prints key=value lines (and "conf:" lines)
# that prefill/cache_state.py's parse() reads. Safe as root in _base, which the nova user can
# write:
# - the cache name is looked at with lstat (stat without -L): a link is reported as one, never
#   followed; only a regular file is opened;
# - no qemu-img runs here: nova could swap the name for a link between our stat and its
#   open (root would open any file or device), and a probe could follow a planted header's
#   backing, data or extent file. A raw image's virtual size is its size (cache_state);
# - the first 512 bytes are read by dd with O_NOFOLLOW and O_NONBLOCK (a link swapped in
#   meanwhile is refused, a fifo does not block), to tell another format's header on the head;
# - the file is stat-ed again afterwards: a change in between is reported, not trusted;
# - nova.conf (root's) is read by grep for section headers and the one key only; every read
#   is bounded in time (timeout) and size (head, cut).
# dash runs it alone (sh -c, no functions): no single quotes.
# $1 base dir, $2 cache name, $3 nova.conf
base=$1 name=$2 conf=$3
say() { printf "%s=%s\n" "$1" "$2"; }
STAT="%F|%d:%i|%s|%U:%G|%u:%g"
if [ ! -e "$conf" ]; then say novaconf missing
elif [ ! -f "$conf" ]; then say novaconf "not a regular file"
else
  found=$(timeout 10 grep -m 1000 -E -e "^(\[|remove_unused_base_images[[:space:]]*[=:])" -- "$conf")
  say novaconf_rc $?
  printf "%s\n" "$found" | head -n 1000 | cut -c 1-300 | sed -e "s/^/conf:/"
fi
if ! cd -P -- "$base" 2>/dev/null; then say cache "no directory $base"; exit 0; fi
st=$(stat -c "$STAT" -- "./$name" 2>/dev/null) || { say cache missing; exit 0; }
say stat "$st"
case "$st" in "regular file|"*|"regular empty file|"*) ;; *) exit 0;; esac
say magic "$(dd if="./$name" bs=512 count=1 iflag=nofollow,nonblock 2>/dev/null | od -An -v -tx1 | tr -d " \n")"
say stat2 "$(stat -c "$STAT" -- "./$name" 2>/dev/null)"
