"""/sim/*: the control API for tests, the cluster script and the compute agents (no token).

Beyond the README's table:
  GET  /sim/health                  200 {"status": "ok", "pid": N} once listening (the pid tells
                                    a starter that the answer comes from its own process)
  GET  /sim/hosts                   every hypervisor: up, enabled, virtual, VM and pending counts
  POST /sim/hosts                   also takes "inventory": {"VCPU": n, "MEMORY_MB": n, "DISK_GB": n}
                                    (totals replacing the default ones, for scale benchmarks)
  GET  /sim/servers                 every VM with host, vm_state, task_state, stuck
  GET  /sim/quota                   the admin project's quota ({"instances","cores","ram"}; -1: none)
  GET  /sim/delete-delay            {"seconds": D}: how long a node-backed compute takes a delete
  POST /sim/delete-delay            {"seconds": D} (0..3600): each VM deleted from now on stays
                                    listed, task_state "deleting", D seconds before its agent is
                                    asked to remove it; /sim/reset sets it back to 0
  POST /sim/placement-max           {"version": "1.N"} (10 <= N <= 39): Placement answers as a cloud
                                    of that age (a newer microversion: 406); /sim/reset: the newest
  POST /sim/servers/<id>/end        {"after": S} (0..3600, default 0): the VM's grid job ends in S
                                    seconds and the VM goes away on its own (job_end.py)
  POST /sim/agent/<host>/heartbeat  {"created": [ids], "removed": [ids]} (work done since the last
                                    beat) -> {"create": [{"id","name","instance_name",...}],
                                    "remove": [ids]} (all work still pending for this host);
                                    with "wait": S (at most 2), no work pending yet, the answer
                                    comes as soon as there is some (a delayed delete: when it is
                                    due), or after S seconds
  GET  /sim/hostile                 {"hostile": {...}} and, with "names" on, the served "names",
                                    "error_text", "marker" (the file a run `$(...)` would make)
                                    "flavor" (the id of the hostile flavor) and "queued_image"
                                    (the id of the queued image with hostile names)
  PUT  /sim/hostile                 a JSON object merged into the cloud's `hostile` dict: each key
                                    a hostile behaviour (README, "Hostile mode"); answers as GET
Request log entries also carry "duration" (seconds) and, when the request had one, "query"
({name: its last value}); reading or clearing the log is not logged.
POST /sim/reset also removes the virtual hosts (each test adds its own); node-backed hosts stay.
"""
import os
import time

from . import delete_delay, job_end, model
from .base import Service
from .http import Response
from .model import ApiError


def _names(value):
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise ApiError(400, "names must be a list of host names")
    return value


class Control(Service):
    name = "sim"
    name_prefix = "sim"

    def check_token(self, req, sub):
        return  # head side only: the simulator listens on loopback and the private bridge

    def routes(self):
        r = self.router
        r.add("GET", "/health", lambda req: Response(200, {"status": "ok", "pid": os.getpid()}))
        r.add("POST", "/reset", self.reset)
        r.add("GET", "/requests", self.requests)
        r.add("DELETE", "/requests", self.clear_requests)
        r.add("GET", "/hosts", self.hosts)
        r.add("POST", "/hosts", self.add_hosts)
        r.add("POST", "/images", self.add_image)
        r.add("GET", "/servers", self.servers)
        r.add("POST", "/servers/([^/]+)/stuck", self.stuck)
        r.add("POST", "/servers/([^/]+)/end", self.end_job)
        r.add("POST", "/fail-next-boots", self.fail_next_boots)
        r.add("GET", "/delete-delay", self.get_delete_delay)
        r.add("POST", "/delete-delay", self.set_delete_delay)
        r.add("GET", "/hostile", self.get_hostile)
        r.add("PUT", "/hostile", self.put_hostile)
        r.add("POST", "/placement-max", self.set_placement_max)
        r.add("GET", "/quota", self.get_quota)
        r.add("POST", "/quota", self.set_quota)
        r.add("POST", "/agent/([^/]+)/heartbeat", self.heartbeat)

    def error(self, err):
        return Response(err.status, {"error": {"code": err.status, "message": err.message}})

    def reset(self, req):
        with self.cloud.lock:
            self.cloud.reset()
        return Response(200, {"status": "reset"})

    def requests(self, req):
        with self.cloud.lock:
            log = list(self.cloud.requests)
        return Response(200, log)  # a bare list, as the README's table says

    def clear_requests(self, req):
        with self.cloud.lock:
            self.cloud.requests = []
        return Response(204)

    def _host_view(self, host, mono):
        return {"name": host.name, "virtual": host.virtual, "up": self.cloud.is_up(host, mono),
                "enabled": host.enabled, "disabled_reason": host.disabled_reason,
                "vms": len(host.vms), "pending_create": len(host.want_create),
                "pending_remove": len(host.want_remove), "uuid": host.uuid,
                "service_id": host.service_id}

    def hosts(self, req):
        with self.cloud.lock:
            mono = time.monotonic()
            return Response(200, {"hosts": [self._host_view(h, mono) for h in self.cloud.hosts.values()]})

    def add_hosts(self, req):
        body = req.json()
        inventory = body.get("inventory") or {}
        if not isinstance(inventory, dict) or any(
                rc not in ("VCPU", "MEMORY_MB", "DISK_GB") or not isinstance(v, int) or v < 1
                for rc, v in inventory.items()):
            raise ApiError(400, "inventory must map VCPU/MEMORY_MB/DISK_GB to positive integers")
        with self.cloud.lock:
            added = self.cloud.add_hosts(_names(body.get("names")), bool(body.get("virtual")),
                                         inventory)
        return Response(200, {"added": added})

    def add_image(self, req):
        body = req.json()
        if not isinstance(body.get("name"), str):
            raise ApiError(400, "name is required")
        image = self.cloud.add_image(body["name"], body.get("file"),  # takes the lock itself
                                     body.get("disk_format") or "qcow2", body.get("id"),
                                     body.get("status") or "active",
                                     body.get("container_format") or "bare")
        return Response(201, image)

    def servers(self, req):
        with self.cloud.lock:
            job_end.end_due_jobs(self.cloud)
            return Response(200, {"servers": [
                {"id": vm["id"], "name": vm["name"], "host": vm["host"], "vm_state": vm["vm_state"],
                 "task_state": vm["task_state"], "stuck": vm["stuck"]}
                for vm in self.cloud.vms.values()]})

    def stuck(self, req, vm_id):
        with self.cloud.lock:
            self.cloud.set_stuck(vm_id)
        return Response(200, {"id": vm_id, "stuck": True})

    def end_job(self, req, vm_id):
        after = job_end.check_after(req.json().get("after"))
        if after is None:
            raise ApiError(400, f"after must be a number from 0 to {job_end.MAX_AFTER:g}")
        with self.cloud.lock:
            vm = self.cloud.vms.get(vm_id)
            if vm is None:
                raise ApiError(404, f"Instance {vm_id} could not be found.")
            job_end.end_after(self.cloud, vm, after)
        return Response(200, {"id": vm_id, "after": after})

    def fail_next_boots(self, req):
        count = req.json().get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ApiError(400, "count must be an integer >= 0")
        with self.cloud.lock:
            self.cloud.fail_next_boots = count
        return Response(200, {"fail_next_boots": count})

    def get_delete_delay(self, req):
        with self.cloud.lock:
            return Response(200, {"seconds": self.cloud.delete_delay})

    def set_delete_delay(self, req):
        seconds = delete_delay.check_seconds(req.json().get("seconds"))
        if seconds is None:
            raise ApiError(400, f"seconds must be a number from 0 to {delete_delay.MAX_DELAY:g}")
        with self.cloud.lock:
            self.cloud.delete_delay = seconds
        return Response(200, {"seconds": seconds})

    def set_placement_max(self, req):
        version = str(req.json().get("version"))
        major, _, minor = version.partition(".")
        if major != "1" or not minor.isdigit() or not 10 <= int(minor) <= 39:
            raise ApiError(400, "version must be 1.N, N from 10 to 39")
        with self.cloud.lock:
            self.cloud.placement_max = (1, int(minor))
        return Response(200, {"version": version})

    def _hostile_view(self):
        view = {"hostile": dict(self.cloud.hostile)}
        if self.cloud.hostile.get("names"):
            view.update(names=self.cloud.hostile_names(), error_text=self.cloud.error_suffix(),
                        marker=os.path.join(self.cloud.state_dir, model.HOSTILE_MARKER),
                        flavor=model.HOSTILE_FLAVOR_ID,
                        queued_image=self.cloud.hostile_images[-1])
        return view

    def get_hostile(self, req):
        with self.cloud.lock:
            return Response(200, self._hostile_view())

    def put_hostile(self, req):
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        with self.cloud.lock:
            self.cloud.set_hostile(body)
            return Response(200, self._hostile_view())

    def get_quota(self, req):
        with self.cloud.lock:
            return Response(200, dict(self.cloud.quota))

    def set_quota(self, req):
        body = req.json()
        with self.cloud.lock:
            for key in ("instances", "cores", "ram"):
                if key in body:
                    if not isinstance(body[key], int) or body[key] < -1:
                        raise ApiError(400, f"{key} must be an integer >= -1")
                    self.cloud.quota[key] = body[key]
            return Response(200, dict(self.cloud.quota))

    def heartbeat(self, req, host_name):
        body = req.json()
        created, removed = body.get("created") or [], body.get("removed") or []
        wait = body.get("wait") or 0
        if not isinstance(wait, (int, float)) or not 0 <= wait <= 2:
            raise ApiError(400, "wait must be a number of seconds from 0 to 2")
        with self.cloud.lock:
            work = self.cloud.heartbeat(host_name, created, removed)
            if wait and not (work["create"] or work["remove"]):
                # A delayed delete falling due wakes nobody: wait no longer than until then.
                due = delete_delay.seconds_to_next(self.cloud.hosts[host_name])
                if self.cloud.work.wait_for(lambda: self.cloud.has_work(host_name),
                                            wait if due is None else min(wait, due)):
                    work = self.cloud.heartbeat(host_name)
        return Response(200, work)
