# shellcheck shell=dash
# CLEANUP (after Ctrl-C, for the directories of replaced sessions, and for a wave transfer
# that failed or was interrupted: its rsync server too): $1 private dir. Leave a "stop" file
# (a script entering from now on turns back), then end every process whose working directory
# is the private directory (only root can put one there: ours, the receiver's dd and
# checksum, the forwarder's tail and its ssh to the next host, the watchers), TERM for two
# seconds then KILL, and remove what they left. Nothing of the run survives the command; a
# script started after it (its session is gone) ends by itself. dash runs it after
# functions.sh (scripts.py): no single quotes.
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
  # shellcheck disable=SC2086  # $pids: a list of pids, split into words on purpose
  if [ "$n" -lt 20 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
  sleep 0.1; n=$((n + 1))
done
cd -P -- "./${1##*/}" 2>/dev/null || exit 0
[ "$(stat -c %d:%i .)" = "$here" ] || exit 1
rm -f -- data .data.* recv.pid fwd.in dd.pid took stop  # .data.*: an rsync cut short
leave "$1"
[ -z "$pids" ] || { echo "still running in $1: $pids" >&2; exit 1; }
exit 0
