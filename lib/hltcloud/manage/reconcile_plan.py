"""reconcile's comparison, pure: what Nova says of one host and what its node says, in; what
is half-way (found) and what --for-real would do, out. No request, no ssh, no clock.

The host's Nova enabled flag is the truth the host is brought to:
- disabled: no daemon running, no VM left, forced down; else `disable` (its steps: start the
  daemons so that deletes reach the node, delete the VMs, wait, stop the daemons, force down);
- enabled: every daemon running, not forced down; else `enable` (start them, clear the mark);
  VMs in ERROR or deleting for longer than --vm-timeout are deleted: on this grid-only
  cloud an ERROR VM is a failed grid worker, elastiq boots another.
A VM deleting for longer than --vm-timeout (since Nova's `updated` of the server, its last
change being the delete) is stuck: Nova ignores a second delete of a VM it is deleting, so it
is first reset (os-resetState to error, clearing the stale task), as an operator would by
hand, on a host of either flag; then the delete of enable's or disable's side goes through.
A daemon whose status command says neither running nor stopped is "unknown": it counts as not
in the state the flag wants (the action's start and stop are idempotent). An unreachable node
is reported as such and never acted upon: what runs there is not guessed.
"""
import datetime
from dataclasses import dataclass

from hltcloud.cloud import computes

RUNNING, STOPPED, UNKNOWN = "running", "stopped", "unknown"


@dataclass(frozen=True)
class Node:
    """What the node said: ((service, running|stopped|unknown), ...) in configured order;
    UNREACHABLE: why it could not be asked ("" when it answered)."""
    daemons: tuple = ()
    unreachable: str = ""


@dataclass(frozen=True)
class Plan:
    host: str
    found: tuple = ()  # what is half-way, in words; empty: consistent
    would_do: tuple = ()  # what --for-real does, in words
    action: str = None  # "enable", "disable", or None (nothing to run on the node)
    delete: tuple = ()  # ids of the VMs to delete on an enabled host
    unstick: tuple = ()  # ids of the VMs stuck deleting, to reset first
    unreachable: bool = False

    @property
    def consistent(self):
        return not self.found


def vm_state(server):
    """error, deleting or ok: what reconcile sees of one server."""
    if computes.deleting(server):
        return "deleting"
    if server.get("status") == "ERROR" or server.get("OS-EXT-STS:vm_state") == "error":
        return "error"
    return "ok"


def deleting_for(server, now):
    """Seconds since the server started deleting: since Nova's `updated` (the delete is its
    last change), None when Nova gives no readable time."""
    try:
        since = datetime.datetime.fromisoformat(str(server.get("updated")))
    except ValueError:
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=datetime.timezone.utc)
    return now - since.timestamp()


def stuck(servers, vm_timeout, now):
    """The SERVERS deleting for longer than VM_TIMEOUT seconds (or since when, unknown)."""
    found = []
    for server in servers:
        if vm_state(server) == "deleting":
            age = deleting_for(server, now)
            if age is None or age > vm_timeout:
                found.append(server)
    return found


def _vms(count, what=""):
    return f"{count} VM{'s' if count != 1 else ''}{what}"


def plan(host, service, servers, node, vm_timeout, now):
    """HOST's Plan from its nova-compute SERVICE, its SERVERS (Nova's), its NODE, the
    --vm-timeout and NOW (seconds since the epoch)."""
    if service.get("status") == "enabled":
        found, would, action, delete = _enabled(service, servers, node, vm_timeout, now)
    else:
        found, would, action, delete = _disabled(service, servers, node, vm_timeout, now)
    unstick = tuple(server["id"] for server in stuck(servers, vm_timeout, now))
    if node.unreachable:
        found = (f"node unreachable ({node.unreachable}): daemons unknown", *found)
        return Plan(host, found, ("nothing: the node cannot be asked",), unreachable=True)
    if unstick:
        would = [f"reset {_vms(len(unstick), ' stuck deleting')}", *would]
    return Plan(host, tuple(found), tuple(would) if found else (), action, tuple(delete),
                unstick)


def _in_state(node, state):
    return [name for name, now in node.daemons if now == state]


def _daemons(names, node):
    """NAMES (daemons of NODE) as a cell says them: "all 4" when they are every one."""
    if len(names) > 1 and len(names) == len(node.daemons):
        return f"all {len(names)}"
    return " ".join(names)


def _stuck_words(servers, vm_timeout, now):
    late = len(stuck(servers, vm_timeout, now))
    return f" ({late} deleting for more than {vm_timeout} s)" if late else ""


def _disabled(service, servers, node, vm_timeout, now):
    found = []
    running = _in_state(node, RUNNING)
    unknown = _in_state(node, UNKNOWN)
    if running:
        found.append(f"disabled, but daemons running: {_daemons(running, node)}")
    if unknown:
        found.append(f"disabled, daemons of unknown state: {_daemons(unknown, node)}")
    if servers:
        late = _stuck_words(servers, vm_timeout, now)
        found.append(f"disabled, but {_vms(len(servers), ' left')}{late}")
    if not service.get("forced_down"):
        found.append("disabled, but not forced down")
    would = []
    if servers:
        would.append(f"disable: delete {_vms(len(servers))}, stop the daemons, force down")
    else:
        would.append("disable: stop the daemons, force down")
    return found, would, "disable" if found else None, ()


def _enabled(service, servers, node, vm_timeout, now):
    found, would, action = [], [], None
    dead = _in_state(node, STOPPED)
    unknown = _in_state(node, UNKNOWN)
    forced = bool(service.get("forced_down"))
    if dead:
        found.append(f"enabled, but daemons not running: {_daemons(dead, node)}")
    if unknown:
        found.append(f"enabled, daemons of unknown state: {_daemons(unknown, node)}")
    if forced:
        found.append("enabled, but forced down")
    if dead or unknown or forced:
        action = "enable"
        would.append("enable: start the daemons" + (", clear forced down" if forced else ""))
    errors = [s for s in servers if vm_state(s) == "error"]
    late = stuck(servers, vm_timeout, now)
    if errors:
        found.append(f"{_vms(len(errors), ' in ERROR')}")
    if late:
        found.append(f"{_vms(len(late))} deleting for more than {vm_timeout} s")
    delete = [s["id"] for s in errors + late]
    if delete:
        would.append(f"delete {_vms(len(delete))}")
    return found, would, action, delete
