# shellcheck shell=dash
# openstack-prefill-cache's conversion on a host, as root, beside directories the nova user
# can write (the instances directory and _base): both are checked first (real directories at
# their configured path, root's or the image owner's); every step that writes, changes an
# owner or reads the copy works on relative names inside a fresh private directory in _base
# (same filesystem: the final rename is atomic). Nova may rename or replace names in _base
# meanwhile: our cwd stays the directory we checked, and ".." is its real parent; the raw
# image is placed by rename(2), never through a link nor into a directory. dash runs it after
# functions.sh (scripts.py): no single quotes.
# $1 transferred copy, $2 base dir, $3 cache name, $4 qemu-img format, $5 owner,
# $6 size and $7 sha1 of the copy (as the head verified it), $8 instances dir.
# shellcheck disable=SC1007  # several variables emptied on one line, on purpose
src=$1 base=$2 name=$3 fmt=$4 owner=$5 size=$6 sum=$7 inst=$8 user=${5%%:*} made= inside= taken=
die() { echo "$1" >&2; exit 1; }
clean() {
  if [ -n "$inside" ]; then rm -f -- ./copy ./raw; leave "$made"; fi
  # unlink: removes a planted link itself, never its target; only in a checked directory
  if [ -n "$taken" ]; then rm -f -- "$src"; fi
}
trap clean EXIT
trap "exit 143" HUP INT TERM
uid=$(id -u -- "$user" 2>/dev/null) || die "refusing: no user $user on this host"
checked() {  # $1 at its real path, owned by root or the owner
  at "$1" || die "$why"
  set -- "$1" "$(stat -c %u .)"
  [ "$2" = 0 ] || [ "$2" = "$uid" ] || die "refusing: $1 is owned by uid $2, not root or $user"
}
checked "$inst"
taken=1
if [ ! -e "$base" ] && [ ! -L "$base" ]; then  # Nova makes it; a new node may lack it yet
  at "${base%/*}" || die "$why"
  mkdir -- "./${base##*/}" || die "cannot make $base"
fi
checked "$base"
fresh .hlt-convert- || die "refusing: $base/$made is not a private directory of root"
inside=1
# One rename: a planted symlink moves itself, never its target; then nobody else can change it.
mv -T -f -- "$src" ./copy || die "cannot take $src"
# shellcheck disable=SC2015  # A && B || C: C unless both tests hold, as meant
[ -f ./copy ] && [ ! -L ./copy ] && [ "$(stat -c %u:%h:%s ./copy)" = "0:1:$size" ] ||
  die "refusing: $src is not the regular file of $size bytes that root wrote"
# shellcheck disable=SC2015  # A && B || C: C unless the sum ran and matches, as meant
got=$(sha1sum ./copy) && [ "${got%% *}" = "$sum" ] || die "refusing: $src has the wrong sha1"
qemu-img convert -f "$fmt" -O raw ./copy ./raw || exit 1
chown -- "$owner" ./raw || die "cannot give the raw image to $owner"
place raw "$name" "$base/$name" || die "$why"
