# shellcheck shell=dash
# FORWARD, the sending end of a hop of a pipelined chain (see chain_functions.sh): dash runs
# it after functions.sh and chain_functions.sh (scripts.py): no bashisms, no single quotes.
# $1 host, $2 private dir, $3 next host, $4 seconds to wait for this host's receiver
# (0: it must be receiving now, as when a slow host is routed around), $5 the byte to start at
# (0 but for a take-over), then the ssh command line towards the next host. It follows the
# receiver's file from byte $5 (tail -f on an open descriptor: the final rename does not
# disturb it) until the receiver has ended; ssh reads tail's output directly. tail polls a
# descriptor (no inotify there): every 10 ms, so that a hop adds little and its link does not
# idle between two polls (at 0.1 s, 15 hops added seconds to a chain). A planned
# forwarder starts its ssh at once, while it waits for the receiver here (the handshakes of a
# chain do not add up); a route-around one first checks that there is a receiver to follow:
# if not (its copy was complete, or it ended, meanwhile) it says "HLTPIPE GONE NEXT" on
# stdout and sends nothing.
# shellcheck disable=SC1007  # several variables emptied on one line, on purpose
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
# shellcheck disable=SC2015  # A && B || C: C unless both tests hold, as meant
[ -z "$stop" ] && [ ! -e stop ] || { clean; exit 1; }
set -C
exec 3<&0
( trap "" PIPE; cat <&3; reap $$ ) >/dev/null 2>&1 &
exec 3<&-
if [ "$wait" = 0 ]; then
  attach 0 || { printf "HLTPIPE GONE %s\n" "$next"; clean; exit 1; }
  tail -c +"$start" -f -s 0.01 --pid="$pid" <&4 4<&- | "$@" 4<&-
else
  { attach "$wait" && exec tail -c +"$start" -f -s 0.01 --pid="$pid" <&4 4<&-; } | "$@"
fi
st=$?
exec 4<&-
clean
trap "" TERM
kill -TERM 0
exit $st
