"""Helpers shared by the tests of every directory (tests/, tests/simcluster, tests/realcloud):
`import helpers` works everywhere, pytest.ini puts tests/ on sys.path; the harness scripts
(tests/simcluster/netnodes.py, tests/realcloud/realcloud.py) add it themselves.

Standard library only at import time: the harness scripts run outside pytest.

Sections: waiting; files and processes; the tools' output; Nova scenarios, the same on the
simulated and the real cloud (where they differ, a parameter says how); the simulated cloud
(its request log, its computes, its Glance).
"""
import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


# ------------------------------------------------------------------ waiting

def poll(check, timeout=30, step=0.1, until=bool):
    """Call CHECK every STEP seconds until UNTIL(its value) holds or TIMEOUT seconds have
    passed: its last value (checked at least once, and once more after the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(step)


def eventually(check, seconds, step=0.2):
    """Poll CHECK until it finds nothing (or SECONDS have passed): what it found last."""
    return poll(check, seconds, step, until=lambda found: not found)


def wait_for(predicate, timeout=30, what="condition", step=0.3, error=AssertionError,
             message="timed out waiting for {what}"):
    """Wait until PREDICATE() is true; after TIMEOUT seconds raise ERROR(MESSAGE) (MESSAGE
    may name {what} and {timeout})."""
    if not poll(predicate, timeout, step):
        raise error(message.format(what=what, timeout=timeout))


# ------------------------------------------------------------------ clouds and ports

def started(unavailable, start, prepare=None):
    """The body of a session fixture: skip (saying why) where UNAVAILABLE() says the cloud
    cannot run here; else PREPARE(), then yield the cloud START() brings up, stopped at the
    end whatever happens."""
    import pytest
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    if prepare:
        prepare()
    cloud = start()
    try:
        yield cloud
    finally:
        cloud.stop()


def free_port():
    """A TCP port of 127.0.0.1 free right now (someone else may take it before we bind it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ files and processes

def sha1_of(path):
    """The sha1 of the file at PATH (hex), read a MiB at a time."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def node_file(cluster, name, dest):
    """Where DEST (a path under /var/lib/nova on node NAME) lies on the head."""
    return cluster.node_dir(name) / Path(dest).relative_to("/var/lib/nova")


def twins(cluster, dest, names=None):
    """Hidden temporary files and directories of DEST (.DEST*) on the nodes NAMES (all)."""
    base = Path(dest).name
    return [p for name in (names or cluster.names)
            for p in node_file(cluster, name, dest).parent.glob(f".{base}*")]


def processes(inspect):
    """What INSPECT(Path("/proc/PID")) says of each process (head and nodes share one pid
    namespace), where it says something (not None); a process that ends or cannot be read
    meanwhile (OSError) is left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seen = inspect(entry)
        except OSError:
            continue
        if seen is not None:
            found.append(seen)
    return found


def cmdline(entry):
    """The command line of the process ENTRY (/proc/PID), its words joined by spaces."""
    return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def processes_mentioning(text):
    """(pid, command line) of every process whose command line holds TEXT, this test
    process aside."""
    def inspect(entry):
        if int(entry.name) == os.getpid():
            return None
        line = cmdline(entry)
        return (entry.name, line) if text in line else None
    return processes(inspect)


def config_with(cluster, tmp_path, **paths):
    """The cluster's site config with some [paths] keys changed."""
    text = Path(cluster.config_path).read_text()
    for key, value in paths.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if not count:
            text = text.replace("[paths]\n", f"[paths]\n{key} = {value}\n")
    path = tmp_path / "hltcloud.conf"
    path.write_text(text)
    return str(path)


def base_file(cluster, node, image_id):
    """Where the cached raw image of IMAGE_ID lies in NODE's _base (named by its sha1)."""
    name = hashlib.sha1(image_id.encode()).hexdigest()
    return cluster.node_dir(node) / "instances" / "_base" / name


# ------------------------------------------------------------------ the tools' output

def lines(result):
    return result.stdout.splitlines()


def table_rows(text):
    """The cells of each row of a printed table, header lines left out."""
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| Hypervisor", "| ID"))]


def transfer_lines(out):
    """(source, target, rate) of each "[ OK ] SOURCE --> TARGET (RATE)" line of rsync-wave.py."""
    return re.findall(r"^\[ OK \] (\S+) --> (\S+) \(([\d.]+ [kMG]B/s)\)$", out, re.M)


# ------------------------------------------------------------------ Nova scenarios (both clouds)

COMPUTE = "openstack-nova-compute"
SERVICES = ("openstack-nova-network", "openstack-nova-metadata-api", COMPUTE, "libvirtd")
MUTATING = ("POST", "PUT", "DELETE", "PATCH")
FLAVOR = "ali1.xlarge"


def service(nova, host):
    return nova.services.list(host=host, binary="nova-compute")[0]


def servers_on(nova, host):
    return nova.servers.list(search_opts={"all_tenants": 1, "host": host})


def stop_compute(cloud, nova, host, timeout=30):
    """Stop the host's nova-compute (CLOUD: SimCluster or RealCluster); wait until Nova calls
    it down (on the real cloud: its heartbeat check)."""
    done = cloud.node_service(host, COMPUTE, "stop")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: service(nova, host).state == "down", timeout, what=f"{host} down")


def boot_on(cloud, nova, host, count, name="wn-grid", image=None, nics="auto", timeout=30):
    """COUNT ACTIVE VMs on HOST (the other hosts disabled meanwhile): their ids. IMAGE: an
    image id (default: the simulated cloud's worker_image); NICS: "auto" on the simulated
    cloud, "none" on the real one (no Neutron)."""
    image = image or worker_image(cloud)
    flavor = nova.flavors.find(name=FLAVOR)
    others = [s for s in nova.services.list(binary="nova-compute")
              if s.host != host and s.status == "enabled"]
    for other in others:
        nova.services.disable_log_reason(other.id, "test: boot on one host")
    try:
        before = {s.id for s in nova.servers.list(search_opts={"all_tenants": 1})}

        def mine():
            return [s for s in nova.servers.list(search_opts={"all_tenants": 1})
                    if s.id not in before]
        nova.servers.create(name, image, flavor, min_count=count, max_count=count, nics=nics)
        wait_for(lambda: len(mine()) == count and all(s.status == "ACTIVE" for s in mine()),
                 timeout, what=f"{count} VMs ACTIVE on {host}")
    finally:
        for other in others:
            nova.services.enable(other.id)
    vms = mine()
    assert {getattr(s, "OS-EXT-SRV-ATTR:host") for s in vms} == {host}
    return [s.id for s in vms]


# ------------------------------------------------------------------ the simulated cloud

MANAGE = "openstack-hlt-manage"
REPO = Path(__file__).resolve().parent.parent
IMAGE = "CentOS6-build13"  # the image runvms boots (the cluster's site config)


def client(cluster):
    """(novaclient, keystoneauth session) with the cluster's credentials: the tests look at
    the cloud through the clients, not through the code under test."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    from novaclient import client as nova_client
    env = cluster.env
    auth = v3.Password(auth_url=env["OS_AUTH_URL"], username=env["OS_USERNAME"],
                       password=env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
                       user_domain_name=env.get("OS_USER_DOMAIN_NAME", "Default"),
                       project_domain_name=env.get("OS_PROJECT_DOMAIN_NAME", "Default"))
    sess = ks_session.Session(auth=auth)
    return nova_client.Client("2.60", session=sess), sess


def novaclient(cloud):
    """python-novaclient on CLOUD's keystoneauth1 session (hltcloud.cloud.session.Cloud): the
    tests' and harness scripts' view of Nova (the tools use hltcloud.cloud.nova)."""
    from novaclient import client as nova_client
    return nova_client.Client("2.60", session=cloud.session,
                              endpoint_override=cloud.endpoints["compute"])


def tool(cluster, *args, timeout=180):
    """bin/openstack-hlt-manage ARGS with the cluster's environment."""
    return cluster.run_tool(MANAGE, *args, timeout=timeout)


@dataclass
class Interrupted:
    status: int  # the exit status
    out: str  # standard output (with MERGED, standard error too)
    err: str
    before: object = None  # what BEFORE() said just before the signal

    @property
    def lines(self):
        return self.out.splitlines()


def interrupt(argv, env, at_line=None, when=None, settle=0.0, timeout=60, merged=False,
              before=lambda: None, poll_step=0.1):
    """Run ARGV and press Ctrl-C (SIGINT) once it prints a line holding AT_LINE, or once
    WHEN() holds (polled for up to TIMEOUT seconds), SETTLE seconds later. Whatever happens,
    nothing of it outlives the call (its process group is killed)."""
    proc = subprocess.Popen(argv, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                            start_new_session=True)
    seen = []
    try:
        if at_line is not None:
            for line in proc.stdout:
                seen.append(line)
                if at_line in line:
                    break
        if when is not None:
            poll(when, timeout, step=poll_step)
        time.sleep(settle)
        said = before()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Interrupted(proc.returncode, "".join(seen) + out, err or "", said)


def interrupt_while_waiting(cluster, args):
    """openstack-hlt-manage ARGS, interrupted (SIGINT) once it prints "Waiting max":
    (exit status, every line it printed)."""
    run = interrupt([str(REPO / "bin" / MANAGE), *args], cluster.env, at_line="Waiting max",
                    merged=True)
    return run.status, run.lines


def requests(cluster):
    """The simulator's request log, its own /sim requests left out."""
    log = cluster.sim("GET", "/sim/requests")
    log = log["requests"] if isinstance(log, dict) else log
    return [r for r in log if r.get("service") != "sim"]


def clear_log(cluster):
    cluster.sim("DELETE", "/sim/requests")


def authentications(log):
    return [r for r in log if r["service"] == "identity" and r["method"] == "POST"
            and r["path"].rstrip("/").endswith("/auth/tokens")]


def mutations(log):
    """Every request that changes something, the password authentication excepted."""
    auth = authentications(log)
    return [r for r in log if r["method"] in MUTATING and r not in auth]


def boots(log):
    return [r for r in log if r["method"] == "POST" and r["path"].rstrip("/").endswith("/servers")]


def statuses(nova):
    return sorted(s.status for s in nova.servers.list(search_opts={"all_tenants": 1}))


PLACEMENT = {"service_type": "placement"}
PLACEMENT_HEADERS = {"OpenStack-API-Version": "placement 1.10"}


def expected_fit(cluster, nova, empty=False):
    """VMs of the flavor that fit the enabled, up hosts: computed from Placement here."""
    _, sess = client(cluster)
    flavor = nova.flavors.find(name=FLAVOR)
    need = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk}
    usable = {s.host for s in nova.services.list(binary="nova-compute")
              if s.status == "enabled" and s.state == "up"}
    providers = sess.get("/resource_providers", endpoint_filter=PLACEMENT,
                         headers=PLACEMENT_HEADERS).json()["resource_providers"]
    total = 0
    for rp in providers:
        if rp["name"] not in usable:
            continue
        inv = sess.get(f"/resource_providers/{rp['uuid']}/inventories", endpoint_filter=PLACEMENT,
                       headers=PLACEMENT_HEADERS).json()["inventories"]
        used = {} if empty else sess.get(f"/resource_providers/{rp['uuid']}/usages",
                                         endpoint_filter=PLACEMENT,
                                         headers=PLACEMENT_HEADERS).json()["usages"]
        total += min(int(((inv[rc]["total"] - inv[rc]["reserved"]) * inv[rc]["allocation_ratio"]
                          - used.get(rc, 0)) // amount) for rc, amount in need.items())
    return total


def start_compute(cluster, nova, hosts):
    """Start nova-compute on HOSTS; wait until exactly HOSTS are up."""
    for host in hosts:
        done = cluster.node_service(host, COMPUTE, "start")
        assert done.returncode == 0, done.stderr
    # Only HOSTS up: a compute stopped by the reset stays "up" for Nova's service_down_time.
    wait_for(lambda: {s.host for s in nova.services.list(binary="nova-compute")
                      if s.state == "up" and s.host in cluster.names} == set(hosts),
             what=f"exactly {hosts} up")


def worker_image(cluster):
    """The id of IMAGE in the simulated Glance; added (1 MB) when missing (images survive
    the cluster's reset)."""
    _, sess = client(cluster)
    # by name: Glance lists 25 images a page, and a test may have added more since
    images = sess.get("/v2/images", params={"name": IMAGE},
                      endpoint_filter={"service_type": "image"}).json()["images"]
    for image in images:
        if image["name"] == IMAGE:
            return image["id"]
    return cluster.add_image(IMAGE, size_mb=1)


# Another user on the head (the local adversary of SECURITY.md).
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def closed_port():
    """A loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
