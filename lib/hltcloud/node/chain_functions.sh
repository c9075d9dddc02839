# shellcheck shell=dash
# What the two scripts of the pipelined chains (recv.sh, forward.sh) add to functions.sh;
# scripts.py puts both files before each of them. dash runs them: no bashisms, no single quotes.
# Both scripts run as root in DEST's directory, which the nova user may write; every
# name in ps is visible to local users. So all helper files (data, recv.pid, fwd.in once a
# forwarder has opened data) live in one private directory of the run (0700, in DEST's
# directory: the final rename is atomic), used by relative names after entering it (at,
# into). Its name is the head's, random per run and per restart (chain/commands.py). RECV
# and FORWARD of one host race to make it: both accept an existing one that passes the
# checks (only root can make such a one). Every process of ours on a host has that directory
# as its working directory, and only root can enter it: that is how CLEANUP finds them (no
# record to forge or to miss), and how a take-over knows that the dd it stops is ours.
# A "stop" file in it (CLEANUP's) turns away a script that enters while CLEANUP runs.
# Signals: until a script is inside, a signal is only noted (then it cleans up and goes); the
# cleanup itself ignores further ones (the watchers send TERM again and again: a cleanup cut
# short would leave the directory behind).
# - reap PID: for ten seconds at most, TERM to our process group while PID lives.
reap() {
  trap "" TERM; i=0
  while [ "$i" -lt 20 ] && kill -0 "$1" 2>/dev/null; do kill -TERM 0; sleep 0.5; i=$((i + 1)); done
}
