# shellcheck shell=dash
# The functions every writing node script shares: scripts.py puts this file before
# rsync_into.sh, check.sh, cleanup.sh, convert.sh, and (with chain_functions.sh) recv.sh and
# forward.sh. dash runs them (sh -c): no bashisms, no single quotes.
# Each sets $why, the one line of refusal, on failure:
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
# Each script calls only some of them: shellcheck calls the others unreachable there (SC2317).
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
# shellcheck disable=SC2317  # not every script calls it
fresh() {
  made=$(mktemp -d "./$1XXXXXXXXXX") && made=${made#./} && into "$made" && [ -z "$(ls -A .)" ]
}
# shellcheck disable=SC2317  # not every script calls it
place() {
  why="refusing: $3 is a link or a directory"
  if [ -L "../$2" ] || [ -d "../$2" ]; then return 1; fi
  why="cannot rename into $3"
  mv -T -f -- "./$1" "../$2" 2>/dev/null
}
# shellcheck disable=SC2317  # not every script calls it
enter() {
  at "${1%/*}" || return 1
  mkdir -m 700 -- "./${1##*/}" 2>/dev/null
  into "${1##*/}" || { why="refusing: $1 is not a private directory of root"; return 1; }
}
# shellcheck disable=SC2317  # not every script calls it
leave() { cd -P .. && rmdir -- "./${1##*/}" 2>/dev/null; }
# shellcheck disable=SC2317  # not every script calls it
ours() { [ "$(stat -L -c %d:%i "/proc/$1/cwd" 2>/dev/null)" = "$(stat -c %d:%i .)" ]; }
