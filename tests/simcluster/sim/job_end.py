"""A grid job's end (POST /sim/servers/<id>/end): the VM goes away on its own, as when its job
ends and elastiq deletes it, without the tools asking.

The VM carries the monotonic time its job ends ("end_due"); whoever looks at the servers
(a listing, a show, /sim/servers) first deletes those whose time has come, through the same
delete Nova's API runs (so a node-backed host's agent removes the domain, with the delete
delay). A drain sees the VM leave; the request log shows no DELETE from the tools.
"""
import time

MAX_AFTER = 3600.0  # seconds


def check_after(value):
    """The "after" of a /sim/servers/<id>/end body (default 0), or None when it is bad."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value <= MAX_AFTER else None


def end_after(cloud, vm, seconds):
    vm["end_due"] = time.monotonic() + seconds
    end_due_jobs(cloud)


def end_due_jobs(cloud, now=None):
    """Delete the VMs whose job has ended (caller holds cloud.lock)."""
    now = time.monotonic() if now is None else now
    for vm in [v for v in cloud.vms.values() if v.get("end_due") is not None]:
        if vm["end_due"] <= now and vm["task_state"] != "deleting":
            vm["end_due"] = None
            cloud.delete(vm["id"])
