"""The sh scripts run as root on the nodes, in one place: each one works beside directories
the nova user may write (instances/, _base, any DEST's directory), so each one that writes
- enters the directory it works in at its real path (`cd -P` ends where the path says: no
  link on the way), and there a private directory of root (0700, checked after `cd -P`),
  working on relative names inside it;
- places its result with one rename(2) (`mv -T`): never through a link, never into a
  directory; a link or a directory at the target is refused with one line;
- kills a process only if it works in that private directory (its /proc/PID/cwd).
The shared functions are ENTER_FUNCTIONS. dash runs them: no bashisms, no single quotes (they
travel through shlex.join). Arguments come as "$1"..., never inside the script text.

Each script is a .sh file beside this module, its comments inside it (read them there); this
module reads them once, at import, and keeps only what sh needs: a line that is only a
comment, or blank, would cost its bytes on every ssh command line. PROGRAMS says which files
make each script, in order (the shared functions first); tests/unit/node/test_node_scripts.py checks
each one whole with sh -n and shellcheck.

- ENTER_FUNCTIONS (functions.sh): at, into, fresh, place, enter, leave, ours; CHAIN_FUNCTIONS
  (chain_functions.sh) adds reap for the chains;
- RSYNC_INTO_SCRIPT, CHECK_SCRIPT: the wave's rsync into a private directory on a target,
  its verification and rename there;
- RECV_SCRIPT, FORWARD_SCRIPT, CLEANUP_SCRIPT: the pipelined chains;
- CONVERT_SCRIPT: openstack-prefill-cache's conversion into Nova's image cache;
- CACHE_STATE_SCRIPT: what a host holds in Nova's image cache (read only, runs no qemu-img);
- PRUNE_SCRIPT: openstack-prefill-cache --prune: the cached images no server uses, and the
  leftovers of interrupted prefills, listed or removed.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_FUNCTIONS = ("functions.sh",)
_CHAIN = _FUNCTIONS + ("chain_functions.sh",)

PROGRAMS = {
    "ENTER_FUNCTIONS": _FUNCTIONS,
    "CHAIN_FUNCTIONS": _CHAIN,
    "RSYNC_INTO_SCRIPT": _FUNCTIONS + ("rsync_into.sh",),
    "CHECK_SCRIPT": _FUNCTIONS + ("check.sh",),
    "RECV_SCRIPT": _CHAIN + ("recv.sh",),
    "FORWARD_SCRIPT": _CHAIN + ("forward.sh",),
    "CLEANUP_SCRIPT": _FUNCTIONS + ("cleanup.sh",),
    "CONVERT_SCRIPT": _FUNCTIONS + ("convert.sh",),
    "CACHE_STATE_SCRIPT": ("cache_state.sh",),
    "PRUNE_SCRIPT": _FUNCTIONS + ("prune.sh",),
}


def path(name):
    """The .sh file NAME of this package."""
    return os.path.join(_HERE, name)


def _needed(name):
    """NAME's text that sh needs: its lines but the blank ones and those that are only a
    comment (none starts with #!)."""
    with open(path(name), encoding="utf-8") as f:
        return "".join(line + "\n" for line in f.read().splitlines()
                       if line.strip() and not line.lstrip().startswith("#"))


_TEXT = {name: _needed(name) for name in set().union(*PROGRAMS.values())}  # each file read once


def _program(key):
    """The script KEY as it travels: its files, one after another."""
    return "".join(_TEXT[name] for name in PROGRAMS[key])


ENTER_FUNCTIONS = _program("ENTER_FUNCTIONS")
CHAIN_FUNCTIONS = _program("CHAIN_FUNCTIONS")
RSYNC_INTO_SCRIPT = _program("RSYNC_INTO_SCRIPT")
CHECK_SCRIPT = _program("CHECK_SCRIPT")
RECV_SCRIPT = _program("RECV_SCRIPT")
FORWARD_SCRIPT = _program("FORWARD_SCRIPT")
CLEANUP_SCRIPT = _program("CLEANUP_SCRIPT")
CONVERT_SCRIPT = _program("CONVERT_SCRIPT")
CACHE_STATE_SCRIPT = _program("CACHE_STATE_SCRIPT")
PRUNE_SCRIPT = _program("PRUNE_SCRIPT")
