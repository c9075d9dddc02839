"""The sh scripts run as root on the nodes, in one place: each one works beside directories
the nova user may write (instances/, _base, any DEST's directory), so each one that writes
- enters the directory it works in at its real path (`cd -P` ends where the path says: no
  link on the way), and there a private directory of root (0700, checked after `cd -P`),
  working on relative names inside it;
- places its result with one rename(2) (`mv -T`): never through a link, never into a
  directory; a link or a directory at the target is refused with one line;
- kills a process only if it works in that private directory (its /proc/PID/cwd).
The shared functions are ENTER_FUNCTIONS. dash runs them: no bashisms, no single quotes.
Arguments come as "$1"..., never inside the script text.

- RSYNC_INTO_SCRIPT, CHECK_SCRIPT: the wave's rsync into a private directory on a target,
  its verification and rename there;
- RECV_SCRIPT, FORWARD_SCRIPT, CLEANUP_SCRIPT: the pipelined chains;
- CONVERT_SCRIPT: openstack-prefill-cache's conversion into Nova's image cache;
- CACHE_STATE_SCRIPT: what a host holds in Nova's image cache (read only, runs no qemu-img).
"""

# What every writing script shares (each sets $why, the one line of refusal, on failure):
# - at DIR: cd to DIR at its real path (nova owns parts of it: a link it planted anywhere on
#   the way is refused);
# - into NAME: enter ./NAME if it is a private directory of root: after `cd -P`, ".." is where
#   we were and holds NAME as the directory itself (not a link to it), root owns it, mode 700
#   (only root can make such a one; the caller gives up otherwise, where it is then is unknown);
# - fresh PREFIX: make such a directory here, named PREFIX and random letters (mktemp -d: not
#   predictable), and enter it, empty;
# - place FILE NAME SHOWN: rename ./FILE to ../NAME by rename(2) (mv -T): never through a link,
#   never into a directory; a link or a directory there is refused (SHOWN names it);
# - enter PATH: enter the private directory PATH of a run, made unless there (two scripts may
#   race to make it: both accept one that passes the checks, only root can make such a one);
#   leave PATH: back to its parent, removing it if empty;
# - ours PID: is PID working in the current directory (then only root put it there)?
ENTER_FUNCTIONS = r"""
at() {
  why="refusing: ${1:-/} is not a directory"
  cd -P -- "${1:-/}" 2>/dev/null || return 1
  why="refusing: ${1:-/} is not a real directory (a link on its path)"
  [ "$(pwd -P)" = "${1:-/}" ]
}
into() {
  _up=$(stat -c %d:%i .) && cd -P -- "./$1" 2>/dev/null && [ "$(stat -c %d:%i ..)" = "$_up" ] &&
    [ "$(stat -c %d:%i:%u:%a .)" = "$(stat -c %d:%i -- "../$1"):0:700" ]
}
fresh() {
  made=$(mktemp -d "./$1XXXXXXXXXX") && made=${made#./} && into "$made" && [ -z "$(ls -A .)" ]
}
place() {
  why="refusing: $3 is a link or a directory"
  if [ -L "../$2" ] || [ -d "../$2" ]; then return 1; fi
  why="cannot rename into $3"
  mv -T -f -- "./$1" "../$2" 2>/dev/null
}
enter() {
  at "${1%/*}" || return 1
  mkdir -m 700 -- "./${1##*/}" 2>/dev/null
  into "${1##*/}" || { why="refusing: $1 is not a private directory of root"; return 1; }
}
leave() { cd -P .. && rmdir -- "./${1##*/}" 2>/dev/null; }
ours() { [ "$(stat -L -c %d:%i "/proc/$1/cwd" 2>/dev/null)" = "$(stat -c %d:%i .)" ]; }
"""

# The wave's copy on a target, as root, in DEST's directory (which the nova user may write).
# rsync writes it as ./data inside a private directory of the transfer (RSYNC_INTO_SCRIPT, its
# --rsync-path: the rsync server starts in that directory, checked, and never resolves a name
# in DEST's directory); then the check enters the same directory, verifies ./data and renames
# it into place (place). Exit 4 or 5: the copy was bad (and is gone, with the directory); 3: it
# could not be checked or placed. sh (dash) runs both.
# RSYNC_INTO: $1 the private directory, then the rsync server command (its last word: the
# destination rsync was given, this directory again, replaced by ./data).
RSYNC_INTO_SCRIPT = ENTER_FUNCTIONS + r"""
enter "$1" || { echo "$why" >&2; exit 1; }
shift
n=$# i=0
for word; do
  i=$((i + 1))
  if [ "$i" = "$n" ]; then set -- "$@" ./data; else set -- "$@" "$word"; fi
  shift
done
exec "$@"
"""

# CHECK: $1 the private directory, $2 DEST, $3 size, $4 digest ("" = size only), $5 checksum
# tool, $6 its name
CHECK_SCRIPT = ENTER_FUNCTIONS + r"""
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
"""



# Both node scripts run as root in DEST's directory, which the nova user may write; every
# name in ps is visible to local users. So all helper files (data, recv.pid, fwd.in once a
# forwarder has opened data) live in one private directory of the run (0700, in DEST's
# directory: the final rename is atomic), used by relative names after entering it (at,
# into). Its name is the head's, random per run and per restart (chain_commands.py). RECV
# and FORWARD of one host race to make it: both accept an existing one that passes the
# checks (only root can make such a one). Every process of ours on a host has that directory
# as its working directory, and only root can enter it: that is how CLEANUP finds them (no
# record to forge or to miss), and how a take-over knows that the dd it stops is ours.
# A "stop" file in it (CLEANUP's) turns away a script that enters while CLEANUP runs.
# Signals: until a script is inside, a signal is only noted (then it cleans up and goes); the
# cleanup itself ignores further ones (the watchers send TERM again and again: a cleanup cut
# short would leave the directory behind).
CHAIN_FUNCTIONS = ENTER_FUNCTIONS + r"""
reap() {
  trap "" TERM; i=0
  while [ "$i" -lt 20 ] && kill -0 "$1" 2>/dev/null; do kill -TERM 0; sleep 0.5; i=$((i + 1)); done
}
"""

# RECV: $1 host, $2 dest, $3 private dir, $4 "1" when a forwarder here reads our file ("" at a
# chain's end), $5 size, $6 digest, $7 checksum tool, $8 stall seconds, $9 (a take-over only)
# the byte the sender starts at. One process (dd) writes what arrives into the file and stops
# at SIZE bytes by itself (no end of input needed: no latency per hop); the forwarders on this
# host follow that file, so a slow next host never slows this one down; the checksum is read
# from the file once it is complete (page cache).
# A take-over (issue 14: this host's upstream was slow and is taken out of the chain): a
# receiver runs in the private directory already, and the forwarders here follow its file and
# its pid. The new receiver says so ("took", with its pid), stops the old one's dd, keeps the
# bytes of the file, drops what the sender sends again (from $9 up to the file's size) and
# appends the rest; the old receiver, finding "took" after its dd, only stays alive (silent:
# its session may be gone) until the new one has ended, so that the forwarders here read the
# file to its end. One take-over per directory.
# sh (dash) runs it; no bashisms, no single quotes.
RECV_SCRIPT = CHAIN_FUNCTIONS + r"""
host=$1 dest=$2 priv=$3 feed=$4 size=$5 sum=$6 tool=$7 stall=$8 from=$9
mon= inside= entered= stop= skip=0 count=$5 ddpid=
say() { printf "HLTPIPE %s %s %s\n" "$1" "$host" "$2"; }
clean() {
  trap "" HUP INT TERM PIPE
  if [ -n "$ddpid" ]; then kill "$ddpid" 2>/dev/null; ddpid=; fi
  if [ -n "$inside" ]; then inside=; rm -f -- data recv.pid fwd.in dd.pid; fi
  if [ -n "$entered" ]; then entered=; leave "$priv"; fi
}
fail() { say F "$1"; clean; if [ -n "$mon" ]; then kill "$mon" 2>/dev/null; fi; exit 1; }
trap "stop=1" HUP INT TERM PIPE
[ -d "${dest%/*}/" ] || fail "no directory ${dest%/*}"
enter "$priv" || fail "$why"
entered=1
[ -n "$from" ] || inside=1  # a take-over owns the files once it has taken over
trap "clean; exit 1" HUP INT TERM PIPE
[ -z "$stop" ] && [ ! -e stop ] || fail "stopped"
set -C  # new files only: never write through a name that exists
if [ -z "$from" ]; then
  : > data || fail "cannot write $priv/data"
  # Our pid: the forwarders here follow our file until we end.
  echo "$$" > recv.pid || fail "cannot write $priv/recv.pid"
else
  old=$(cat dd.pid 2>/dev/null)
  case "$old$from" in *[!0-9]*|"$from") fail "no receiver to take over in $priv";; esac
  echo "$$" > took || fail "$priv was taken over already"
  inside=1
  # Only a process working here is that dd: by now the pid may belong to another.
  if ours "$old"; then kill -TERM "$old" 2>/dev/null; fi
  i=0
  while ours "$old"; do
    [ "$i" -lt 50 ] || kill -KILL "$old" 2>/dev/null
    sleep 0.1; i=$((i + 1))
  done
  n=$(stat -c %s data 2>/dev/null) || fail "no file to take over in $priv"
  [ "$from" -le "$n" ] && [ "$n" -le "$size" ] || fail "cannot resume at byte $from: $n bytes in $priv/data"
  skip=$((n - from)) count=$((size - n)) feed=
fi
(
  trap "" PIPE
  last=-1 idle=0
  while sleep 0.5; do  # twice a second: the head sees a slow hop early
    if [ -z "$from" ] && [ -e took ]; then exit 0; fi  # taken over: the new one speaks
    n=$(stat -c %s data 2>/dev/null) || { reap $$; exit 0; }
    if [ "$n" = "$last" ]; then idle=$((idle + 1)); else idle=0; last=$n; fi
    if ! say P "$n" 2>/dev/null; then reap $$; exit 0; fi
    if [ "$idle" -ge $((stall * 2)) ]; then say F "no data for $stall s"; reap $$; exit 0; fi
  done
) &
mon=$!
# The planned forwarder opens our file before we may rename it away (bounded: without it
# this copy still counts, and the head handles the next host).
i=0
while [ -n "$feed" ] && [ ! -e fwd.in ] && [ "$i" -lt $((stall * 5)) ]; do
  sleep 0.1; i=$((i + 1))
done
# In the background, its pid on record, so that a take-over can stop it (the input stays
# ours: an asynchronous command would get /dev/null).
exec 3<&0
dd bs=64K skip="$skip" count="$count" iflag=skip_bytes,count_bytes,fullblock status=none \
  <&3 >> data &
ddpid=$!
echo "$ddpid" >| dd.pid
wait "$ddpid"
st=$? ddpid=
exec 3<&-
if [ -z "$from" ] && [ -e took ]; then
  # Taken over: no word (this session may be gone), the files are the new receiver's;
  # alive until the new receiver ends, for the forwarders that follow our pid; then the
  # mark goes (the last file the new receiver leaves: our watcher stops on it), and the
  # directory with it once the forwarders are done.
  inside=
  trap "exit 1" HUP INT TERM PIPE
  new=$(cat took 2>/dev/null)
  case "$new" in ""|*[!0-9]*) exit 1;; esac
  while kill -0 "$new" 2>/dev/null; do sleep 0.2; done
  kill "$mon" 2>/dev/null
  rm -f -- took
  leave "$priv"
  exit 0
fi
[ "$st" = 0 ] || fail "write error on $priv/data"
n=$(stat -c %s data 2>/dev/null)
[ "$n" = "$size" ] || fail "got $n of $size bytes"
got=$("$tool" data) || fail "cannot checksum $priv/data"
[ "${got%% *}" = "$sum" ] || fail "checksum mismatch"
trap "" HUP INT TERM  # verified: finish, whatever happens now
chmod 644 data || fail "cannot chmod $priv/data"
place data "${dest##*/}" "$dest" || fail "$why"
clean
say OK "$n"
kill -TERM 0
exit 0
"""

# FORWARD: $1 host, $2 private dir, $3 next host, $4 seconds to wait for this host's receiver
# (0: it must be receiving now, as when a slow host is routed around), $5 the byte to start at
# (0 but for a take-over), then the ssh command line towards the next host. It follows the
# receiver's file from byte $5 (tail -f on an open descriptor: the final rename does not
# disturb it) until the receiver has ended; ssh reads tail's output directly. A planned forwarder starts its ssh at once, while it
# waits for the receiver here (the handshakes of a chain do not add up); a route-around one
# first checks that there is a receiver to follow: if not (its copy was complete, or it
# ended, meanwhile) it says "HLTPIPE GONE NEXT" on stdout and sends nothing.
FORWARD_SCRIPT = CHAIN_FUNCTIONS + r"""
host=$1 priv=$2 next=$3 wait=$4 start=$(($5 + 1)) inside= stop= pid=
shift 5
clean() {
  trap "" HUP INT TERM PIPE
  if [ -n "$inside" ]; then inside=; [ -e recv.pid ] || rm -f -- fwd.in; leave "$priv"; fi
}
attach() {  # within $1 s: the receiver here (its pid) and its file (on fd 4), or why not
  i=0
  until [ -s recv.pid ] && [ -f data ]; do
    [ "$i" -lt $(($1 * 10)) ] || { echo "no receiver running on $host" >&2; return 1; }
    sleep 0.1; i=$((i + 1))
  done
  pid=$(cat recv.pid)
  case "$pid" in ""|*[!0-9]*) echo "bad receiver record on $host" >&2; return 1;; esac
  command exec 4< data 2>/dev/null || { echo "no receiver file on $host" >&2; return 1; }
  : >> fwd.in
}
trap "stop=1" HUP INT TERM PIPE
enter "$priv" || { echo "$why" >&2; exit 1; }
inside=1
# PIPE too: with the session gone, even sh's own "Terminated" note on stderr is fatal.
trap "clean; exit 1" HUP INT TERM PIPE
[ -z "$stop" ] && [ ! -e stop ] || { clean; exit 1; }
set -C
exec 3<&0
( trap "" PIPE; cat <&3; reap $$ ) >/dev/null 2>&1 &
exec 3<&-
if [ "$wait" = 0 ]; then
  attach 0 || { printf "HLTPIPE GONE %s\n" "$next"; clean; exit 1; }
  tail -c +"$start" -f -s 0.1 --pid="$pid" <&4 4<&- | "$@" 4<&-
else
  { attach "$wait" && exec tail -c +"$start" -f -s 0.1 --pid="$pid" <&4 4<&-; } | "$@"
fi
st=$?
exec 4<&-
clean
trap "" TERM
kill -TERM 0
exit $st
"""


# CLEANUP (after Ctrl-C, for the directories of replaced sessions, and for a wave transfer
# that failed or was interrupted: its rsync server too): $1 private dir. Leave
# a "stop" file (a script entering from now on turns back), then end every process whose
# working directory is the private directory (only root can put one there: ours, the
# receiver's dd and checksum, the forwarder's tail and its ssh to the next host, the
# watchers), TERM for two seconds then KILL, and remove what they left. Nothing of the run
# survives the command; a script started after it (its session is gone) ends by itself.
CLEANUP_SCRIPT = ENTER_FUNCTIONS + r"""
if ! at "${1%/*}"; then [ -d "${1%/*}/" ] || exit 0; echo "$why" >&2; exit 1; fi
parent=$(stat -c %d:%i .) || exit 1
[ -e "./${1##*/}" ] || [ -L "./${1##*/}" ] || exit 0  # no directory: nothing of ours runs
into "${1##*/}" || { echo "refusing: $1 is not a private directory of root" >&2; exit 1; }
here=$(stat -c %d:%i .) || exit 1
set -C
[ -e stop ] || : > stop || exit 1
cd -P .. && [ "$(stat -c %d:%i .)" = "$parent" ] || exit 1
working_here() {  # the pids whose working directory is the private one
  stat -L -c "%d:%i %n" /proc/[0-9]*/cwd 2>/dev/null | while read -r id path; do
    if [ "$id" = "$here" ]; then path=${path#/proc/}; echo "${path%/cwd}"; fi
  done
}
n=0
while pids=$(working_here) && [ -n "$pids" ] && [ "$n" -lt 40 ]; do
  if [ "$n" -lt 20 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
  sleep 0.1; n=$((n + 1))
done
cd -P -- "./${1##*/}" 2>/dev/null || exit 0
[ "$(stat -c %d:%i .)" = "$here" ] || exit 1
rm -f -- data .data.* recv.pid fwd.in dd.pid took stop  # .data.*: an rsync cut short
cd -P .. && rmdir -- "./${1##*/}" 2>/dev/null
[ -z "$pids" ] || { echo "still running in $1: $pids" >&2; exit 1; }
exit 0
"""



# The conversion on a host, as root, beside directories the nova user can write (the
# instances directory and _base): both are checked first (real directories at their
# configured path, root's or the image owner's); every step that writes, changes an owner or
# reads the copy works on relative names inside a fresh private directory in _base (same
# filesystem: the final rename is atomic). Nova may rename or replace names in _base
# meanwhile: our cwd stays the directory we checked, and ".." is its real parent; the raw
# image is placed by rename(2), never through a link nor into a directory. sh (dash) runs it.
# $1 transferred copy, $2 base dir, $3 cache name, $4 qemu-img format, $5 owner,
# $6 size and $7 sha1 of the copy (as the head verified it), $8 instances dir.
CONVERT_SCRIPT = ENTER_FUNCTIONS + r"""
src=$1 base=$2 name=$3 fmt=$4 owner=$5 size=$6 sum=$7 inst=$8 user=${5%%:*} made= inside= taken=
die() { echo "$1" >&2; exit 1; }
clean() {
  if [ -n "$inside" ]; then rm -f -- ./copy ./raw; cd -P .. && rmdir -- "$made" 2>/dev/null; fi
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
[ -f ./copy ] && [ ! -L ./copy ] && [ "$(stat -c %u:%h:%s ./copy)" = "0:1:$size" ] ||
  die "refusing: $src is not the regular file of $size bytes that root wrote"
got=$(sha1sum ./copy) && [ "${got%% *}" = "$sum" ] || die "refusing: $src has the wrong sha1"
qemu-img convert -f "$fmt" -O raw ./copy ./raw || exit 1
chown -- "$owner" ./raw || die "cannot give the raw image to $owner"
place raw "$name" "$base/$name" || die "$why"
"""


# The state of one host's cached image, for openstack-prefill-cache --check (and the skip
# check of a prefill): read only, changes nothing, prints key=value lines (and "conf:" lines)
# that cache_state.parse() reads. Safe as root in _base, which the nova user can write:
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
# $1 base dir, $2 cache name, $3 nova.conf
CACHE_STATE_SCRIPT = r"""
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
"""
