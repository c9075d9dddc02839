"""The delete delay: how long a node-backed compute takes to delete a VM (POST /sim/delete-delay).

A real compute takes 10 s to a minute to destroy a domain and clean up after it; meanwhile Nova
lists the VM with task_state "deleting". Here each deleted VM carries the monotonic time its
delete is due ("delete_due", set by Cloud.delete); its host's agent is asked to remove it only
then, so it stays listed until at least that time, each VM on its own clock (the deletes of
one host run side by side, as a compute runs them). Virtual hosts still delete at once.
"""
import time

MAX_DELAY = 3600.0  # seconds: far above a real compute's, low enough to catch a unit mistake


def check_seconds(value):
    """The delay of a /sim/delete-delay body, or None when it is not a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value <= MAX_DELAY else None


def due_removals(host, now=None):
    """The ids of HOST's VMs being deleted whose delete is due, sorted."""
    now = time.monotonic() if now is None else now
    return sorted(vm_id for vm_id in host.want_remove
                  if host.vms[vm_id].get("delete_due", 0) <= now)


def seconds_to_next(host, now=None):
    """Seconds until the next of HOST's pending deletes falls due (0 if one is due), or None."""
    now = time.monotonic() if now is None else now
    dues = [host.vms[vm_id].get("delete_due", 0) for vm_id in host.want_remove]
    return max(0.0, min(dues) - now) if dues else None
