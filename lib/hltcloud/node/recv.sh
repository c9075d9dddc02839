# shellcheck shell=dash
# RECV, the receiving end of a hop of a pipelined chain (see chain_functions.sh): dash runs
# it after functions.sh and chain_functions.sh (scripts.py): no bashisms, no single quotes.
# $1 host, $2 dest, $3 private dir, $4 "1" when a forwarder here reads our file ("" at a
# chain's end), $5 size, $6 digest, $7 checksum tool, $8 stall seconds, $9 (a take-over only)
# the byte the sender starts at. One process (dd) writes what arrives into the file from the
# first byte on (small blocks: little latency per hop) and stops at SIZE bytes by itself (no
# end of input needed); the forwarders on this host follow that file, so a slow next host
# never slows this one down; the checksum is read from the file once it is complete (page
# cache).
# A take-over (issue 14: this host's upstream was slow and is taken out of the chain): a
# receiver runs in the private directory already, and the forwarders here follow its file and
# its pid. The new receiver says so ("took", with its pid), stops the old one's dd, keeps the
# bytes of the file, drops what the sender sends again (from $9 up to the file's size) and
# appends the rest; the old receiver, finding "took" after its dd, only stays alive (silent:
# its session may be gone) until the new one has ended, so that the forwarders here read the
# file to its end. One take-over per directory.
host=$1 dest=$2 priv=$3 feed=$4 size=$5 sum=$6 tool=$7 stall=$8 from=$9
# shellcheck disable=SC1007  # several variables emptied on one line, on purpose
mon= inside= entered= stop= skip=0 count=$5 ddpid= base=0
say() { printf "HLTPIPE %s %s %s\n" "$1" "$host" "$2"; }
# size: the bytes in our file in $n, what our dd wrote so far while it runs (read from its
# /proc entry by the shell itself: no process started twice a second), else from stat.
size() {
  n=
  [ -e data ] || return 1
  { read -r _ _ _ pp _ < "/proc/$ddpid/stat" && [ "$pp" = "$$" ] &&
    while read -r key value; do [ "$key" != wchar: ] || n=$((base + value)); done \
      < "/proc/$ddpid/io"; } 2>/dev/null
  [ -n "$n" ] || n=$(stat -c %s data 2>/dev/null)
}
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
# shellcheck disable=SC2015  # A && B || C: C unless both tests hold, as meant
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
  # shellcheck disable=SC2015  # A && B || C: C unless both tests hold, as meant
  [ "$from" -le "$n" ] && [ "$n" -le "$size" ] || fail "cannot resume at byte $from: $n bytes in $priv/data"
  skip=$((n - from)) count=$((size - n)) base=$n feed=
fi
# In the background, its pid on record, so that a take-over can stop it (the input stays
# ours: an asynchronous command would get /dev/null).
exec 3<&0
dd bs=16K skip="$skip" count="$count" iflag=skip_bytes,count_bytes,fullblock status=none \
  <&3 >> data &
ddpid=$!
echo "$ddpid" >| dd.pid
(
  trap "" PIPE
  last=-1 idle=0
  # At once (the head connects the rest of the chain when the first host speaks), then
  # twice a second: the head sees a slow hop early.
  while :; do
    if [ -z "$from" ] && [ -e took ]; then exit 0; fi  # taken over: the new one speaks
    size || { reap $$; exit 0; }
    if [ "$n" = "$last" ]; then idle=$((idle + 1)); else idle=0; last=$n; fi
    if ! say P "$n" 2>/dev/null; then reap $$; exit 0; fi
    if [ "$idle" -gt $((stall * 2)) ]; then say F "no data for $stall s"; reap $$; exit 0; fi
    sleep 0.5 || exit 0
  done
) &
mon=$!
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
# The planned forwarder opens our file before we may rename it away (bounded: without it
# this copy still counts, and the head handles the next host).
i=0
while [ -n "$feed" ] && [ ! -e fwd.in ] && [ "$i" -lt $((stall * 5)) ]; do
  sleep 0.1; i=$((i + 1))
done
trap "" HUP INT TERM  # verified: finish, whatever happens now
chmod 644 data || fail "cannot chmod $priv/data"
place data "${dest##*/}" "$dest" || fail "$why"
clean
say OK "$n"
kill -TERM 0
exit 0
