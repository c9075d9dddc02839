# shellcheck shell=dash
# openstack-prefill-cache --prune on a host, as root, in the directories the nova user can
# write (the instances directory and _base). Read first, remove after:
# - every instance directory (named as a server's uuid, or uuid_resize) must be a server Nova
#   lists on this host: one it does not know may use any cached image, so then nothing is
#   removed on this host at all (refusal, exit 1);
# - candidates, older than the minimum age (mtime) and never a link: in _base, regular files
#   named as 40 hex digits (sha1 of an image id: Nova's cache names) that no server uses and
#   --keep does not name, and the private directories of interrupted conversions and prunes
#   (root's); in the instances directory, the transfer copies and the private directories of
#   interrupted prefills (root's);
# - "list" prints them; "remove" prints them too, then takes each one into a fresh private
#   directory by one rename (a link planted meanwhile moves itself, never its target), checks
#   there that it is the very file or directory listed (device and inode), and removes it;
#   anything else is put back, or left in the private directory, and said.
# Output lines: "CANDIDATE instances|base NAME BYTES", "REMOVED instances|base NAME BYTES",
# "CHANGED instances|base NAME" (names are of checked characters only).
# $1 instances dir, $2 base dir, $3 minimum age in seconds, $4 list|remove, $5 image owner
# (user[:group]), then words i:UUID (the servers Nova lists here) and k:NAME (cache names kept).
# shellcheck disable=SC1007  # several variables emptied on one line, on purpose
inst=$1 base=$2 age=$3 mode=$4 user=${5%%:*} made= found=
shift 5
known=" $* "
die() { echo "$1" >&2; exit 1; }
uid=$(id -u -- "$user" 2>/dev/null) || die "refusing: no user $user on this host"
now=$(date +%s)
checked() {  # $1 at its real path, owned by root or the owner
  at "$1" || die "$why"
  set -- "$1" "$(stat -c %u .)"
  [ "$2" = 0 ] || [ "$2" = "$uid" ] || die "refusing: $1 is owned by uid $2, not root or $user"
}
old() {  # $1 (never a link) was last changed at least $age seconds ago
  [ ! -L "$1" ] && [ $((now - $(stat -c %Y -- "$1"))) -ge "$age" ]
}
roots() { [ "$(stat -c %u -- "$1")" = 0 ]; }
bytes() { du -s -B1 -P -- "$1" | { read -r n _; echo "$n"; }; }
candidates() {  # $1 instances|base: what may go in the current directory, as "NAME D:I BYTES"
  for e in * .hlt-*; do
    [ -e "$e" ] || continue
    case $e in *[!A-Za-z0-9._-]*) continue ;; esac  # nothing of ours: not even printed
    case $1:$e in
      base:????????????????????????????????????????)
        case $e in *[!0-9a-f]*) continue ;; esac
        case $known in *" k:$e "*) continue ;; esac
        [ -f "$e" ] || continue ;;
      base:.hlt-convert-* | base:.hlt-prune-* | instances:.hlt-glance-cache-*)
        if [ ! -d "$e" ] || ! roots "$e"; then continue; fi ;;
      instances:hlt-glance-cache-*)
        if [ ! -f "$e" ] || ! roots "$e"; then continue; fi ;;
      *) continue ;;
    esac
    old "$e" || continue
    echo "$e $(stat -c %d:%i -- "$e") $(bytes "$e")"
  done
}
sweep() {  # $1 instances|base, in its directory: list, and with "remove" take and remove
  found=$(candidates "$1")
  [ -n "$found" ] || return 0
  echo "$found" | while read -r e id n; do echo "CANDIDATE $1 $e $n"; done
  [ "$mode" = remove ] || return 0
  fresh .hlt-prune- || die "refusing: $1 directory: $made is not a private directory of root"
  echo "$found" | while read -r e id n; do
    mv -T -- "../$e" ./taken 2>/dev/null || continue  # gone meanwhile: nothing to do
    if [ "$(stat -c %d:%i ./taken)" = "$id" ]; then
      rm -rf -- ./taken && echo "REMOVED $1 $e $n"
    else  # not what was listed: back where it was, unless the name is taken again
      echo "CHANGED $1 $e"
      [ -e "../$e" ] || [ -L "../$e" ] || mv -T -- ./taken "../$e"
    fi
  done
  leave "$made" || echo "CHANGED $1 $made"
}
checked "$inst"
for e in *; do  # an instance directory Nova does not know: nothing is removed here
  case $e in
    ????????-????-????-????-???????????? | ????????-????-????-????-????????????_resize) ;;
    *) continue ;;
  esac
  if [ ! -d "$e" ] || [ -L "$e" ]; then continue; fi
  case $known in *" i:${e%_resize} "*) continue ;; esac
  die "refusing: $inst/$e is an instance directory of no server Nova lists on this host"
done
checked "$base"
sweep base
checked "$inst"
sweep instances
