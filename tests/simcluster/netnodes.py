"""Simulated HLT nodes: network namespaces on a bridge, one real sshd per node.

Layout and addresses follow tests/simcluster/README.md (slots, state directory). Everything
made here is recorded in the state directory, so `down` works from it after a crash, and,
for the namespaces and the bridge, from the slot's own names when the state is gone.

Commands are argument lists; the only shell strings are constants that take values as
positional arguments ("$1"), never built from names or paths.
"""
import fcntl
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SIMULATOR = HERE / "simulator.py"
NODE_SERVICE = HERE / "node-service"
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # tests/: helpers.py
import helpers  # noqa: E402

SLOTS = range(4)
MAX_NODES = 50
HEAD_NAME = "openstack.internal"
HEAD_SSH_PORT = 2222  # not 22: the machine's own sshd may listen on every address
CONNECT_TIMEOUT = 3
SLOW_DELAY = "100ms"  # `fault NODE slow`: netem delay on each end of the link, or
SLOW_RATE = "2mbit"   # without netem in the kernel, a link this narrow (tbf)
NOVA_DIR = "/var/lib/nova"
SSHD = "/usr/sbin/sshd"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/-]*\Z")  # goes into sshd_config and ssh config lines
_RATE = re.compile(r"[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)\Z")
_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9,
          "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9}


class ClusterError(Exception):
    """Reported in one line by the `cluster` command; nothing is left half made."""


# ---------------------------------------------------------------- names and addresses

def default_names(count):
    return [f"cn{i:02d}.internal" for i in range(1, count + 1)]


def parse_names(text):
    """--names: comma-separated names or pdsh-style lists (hltcloud.hostlist when present)."""
    try:
        sys.path.insert(0, str(REPO / "lib"))
        from hltcloud import hostlist  # noqa: E402 (optional: another issue builds it)
        names = list(hostlist.expand(text))
    except ImportError:
        names = [n.strip() for n in text.split(",") if n.strip()]
    except ValueError as err:
        raise ClusterError(f"--names: {err}") from None
    return names


def check_names(names):
    if not names:
        raise ClusterError("no node names")
    if len(names) > MAX_NODES:
        raise ClusterError(f"at most {MAX_NODES} nodes a slot, not {len(names)}")
    for name in names:
        if not _SAFE_NAME.match(name) or name == HEAD_NAME:
            raise ClusterError(f"invalid node name: {name!r}")
    if len(set(names)) != len(names):
        raise ClusterError("node names must be distinct")
    return names


def check_slot(slot):
    if slot not in SLOTS:
        raise ClusterError(f"slot must be 0..{SLOTS[-1]}, not {slot}")
    return slot


def check_state_path(path):
    path = os.path.abspath(path)
    if not _SAFE_PATH.match(path) or path == "/":
        raise ClusterError(f"state directory must be a plain absolute path: {path!r}")
    return Path(path)


def bridge(slot):
    return f"hltbr{slot}"


def head_addr(slot):
    return f"198.18.0.{64 * slot + 1}"


def node_addr(slot, index):
    """INDEX is 1-based."""
    return f"198.18.0.{64 * slot + 10 + index}"


def netns(slot, index):
    return f"hlt{slot}-cn{index:02d}"


def veth(slot, index):
    return f"hlt{slot}v{index:02d}"  # head side; the node side is eth0


def port(slot):
    return 5800 + slot


def default_state(slot):
    return Path(f"/tmp/hltsim-{slot}")


def lock_path(slot):
    return Path(f"/run/hltsim-{slot}.lock")


def short(name):
    return name.split(".", 1)[0]


# ---------------------------------------------------------------- small helpers

def run(argv, check=True, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ClusterError(f"{' '.join(argv[:4])}...: {detail[-1] if detail else proc.returncode}")
    return proc


def run_all(argvs, check=True):
    """Run independent commands in parallel (node start must stay fast)."""
    procs = [(argv, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)) for argv in argvs]
    failures = []
    for argv, proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            failures.append(f"{' '.join(argv[:4])}...: {(err or out).strip()}")
    if check and failures:
        raise ClusterError(failures[0])
    return failures


def ip_batch(lines, namespace=None):
    if not lines:
        return
    argv = ["ip"] + (["-n", namespace] if namespace else []) + ["-batch", "-"]
    proc = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(f"ip -batch: {proc.stderr.strip()}")


def pid_alive(pid):
    """Alive and not a zombie (pid 1 here does not reap orphans)."""
    try:
        with open(f"/proc/{int(pid)}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def tcp_passive_opens(layout, name):
    """Connections node NAME has accepted since it came up (sshd is the only thing listening
    in its namespace): the kernel's Tcp PassiveOpens of the namespace, read through its
    sshd's /proc/PID/net (no process is started in the node)."""
    pid = read_pid(layout.node_dir(name) / "sshd.pid")
    rows = [line.split() for line in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()
            if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("PassiveOpens")])


def read_pid(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_pids(pids, grace=3.0):
    """TERM, then KILL what is still alive after GRACE seconds."""
    pids = [p for p in set(pids) if p and p > 1 and p != os.getpid() and pid_alive(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if pid_alive(p)]
        if pids:
            time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_private(path, text, mode=0o600):
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


wait_for = functools.partial(helpers.wait_for, step=0.02, error=ClusterError)


# ---------------------------------------------------------------- the cluster description

class Layout:
    """Where everything of one cluster is: derived from slot, state dir and node names."""

    def __init__(self, slot, state, names):
        self.slot = check_slot(slot)
        self.state = check_state_path(state)
        self.names = check_names(list(names))

    @classmethod
    def load(cls, state):
        data = json.loads((Path(state) / "cluster.json").read_text())
        return cls(data["slot"], state, data["names"])

    def save(self):
        (self.state / "cluster.json").write_text(json.dumps(
            {"slot": self.slot, "names": self.names, "head_addr": self.head_addr,
             "port": self.port, "nodes": {n: self.node(n) for n in self.names}}, indent=1))

    @property
    def head_addr(self):
        return head_addr(self.slot)

    @property
    def port(self):
        return port(self.slot)

    @property
    def bridge(self):
        return bridge(self.slot)

    @property
    def sim_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ssh_config(self):
        return self.state / "ssh" / "config"

    @property
    def config_path(self):
        return self.state / "hltcloud.conf"

    def index(self, name):
        try:
            return self.names.index(name) + 1
        except ValueError:
            raise ClusterError(f"no such node: {name}") from None

    def node(self, name):
        i = self.index(name)
        return {"index": i, "addr": node_addr(self.slot, i), "netns": netns(self.slot, i),
                "veth": veth(self.slot, i)}

    def node_dir(self, name):
        return self.state / "nodes" / name

    def run_dir(self, name):
        return self.node_dir(name) / "run"

    def nova_dir(self, name):
        return self.node_dir(name) / "nova"

    def env_vars(self):
        password = (self.state / "admin-password").read_text().strip()
        return {
            "OS_AUTH_URL": f"{self.sim_url}/identity/v3",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": password,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": "RegionOne",
            "HLTCLOUD_CONFIG": str(self.config_path),
            "HLTCLOUD_CACHE_DIR": str(self.state / "cache"),  # status keeps host names there
        }


# ---------------------------------------------------------------- the slot lock

def try_lock(slot):
    """The slot's flock, or None when another cluster holds it. Returns the open fd."""
    fd = os.open(lock_path(slot), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def recorded_state(slot):
    """The state dir the slot's last `up` wrote into its lock file (default if none)."""
    try:
        text = lock_path(slot).read_text().strip()
        return check_state_path(text) if text else default_state(slot)
    except (OSError, ClusterError):
        return default_state(slot)


def hold_lock(fd, layout):
    """Keep the slot locked after we exit: a detached sleeper inherits the locked fd."""
    proc = subprocess.Popen(["sleep", "infinity"], pass_fds=(fd,), start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    record_pid(layout.state, proc.pid, "lock")
    return proc.pid


def record_pid(state, pid, what):
    with open(Path(state) / "pids", "a") as handle:
        handle.write(f"{pid} {what}\n")


def recorded_pids(state):
    pids = []
    try:
        for line in (Path(state) / "pids").read_text().splitlines():
            if line.split():
                pids.append(int(line.split()[0]))
    except (OSError, ValueError):
        pass
    return pids


# ---------------------------------------------------------------- up

def up(slot, names, state=None, lock_fd=None, with_simulator=True, log=print,
       detach_lock=None):
    """Build the cluster in SLOT. Takes the slot lock unless LOCK_FD (already locked) is given.

    DETACH_LOCK (default: only when no LOCK_FD is given): a recorded sleeper keeps the slot
    locked after the caller exits (the `cluster` command). A long-lived caller (pytest, demo)
    that passes LOCK_FD keeps it open itself instead, so that its crash frees the slot and
    the next run cleans the remains.
    On any failure, everything made so far is removed again.
    """
    state = check_state_path(state or default_state(slot))
    layout = Layout(slot, state, names)
    fd = lock_fd if lock_fd is not None else try_lock(slot)
    if fd is None:
        raise ClusterError(f"slot {slot} is in use (lock {lock_path(slot)} held)")
    try:
        teardown_slot(slot, recorded_state(slot), quiet=True)
        teardown_slot(slot, state, quiet=True)  # a crashed run may have left things
        t0 = time.monotonic()
        make_state(layout)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{state}\n".encode(), 0)  # lets `down --slot K` find a custom --state
        if detach_lock or (detach_lock is None and lock_fd is None):
            hold_lock(fd, layout)
        make_network(layout)
        start_sshds(layout)
        if with_simulator and SIMULATOR.exists():
            start_simulator(layout)
        log(f"slot {slot}: {len(layout.names)} nodes up in {time.monotonic() - t0:.1f}s, "
            f"state {state}")
    except BaseException:
        teardown_slot(slot, state, quiet=True)
        raise
    finally:
        if lock_fd is None:
            os.close(fd)  # the sleeper keeps holding it
    return layout


def make_state(layout):
    state = layout.state
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)
    (state / "slot").write_text(f"{layout.slot}\n")
    layout.save()
    for sub in ("ssh", "nodes", "glance/images", "head"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(state / "ssh", 0o700)
    write_private(state / "admin-password", secrets.token_urlsafe(24) + "\n")
    (state / "wn-user-data.txt").write_text("#!/bin/sh\n# worker node user data (simulated)\n")
    Path(NOVA_DIR).mkdir(parents=True, exist_ok=True)  # mount point for the nodes' bind mounts
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    for name in layout.names:
        for sub in ("nova/instances/_base", "run"):
            (layout.node_dir(name) / sub).mkdir(parents=True, exist_ok=True)
    make_keys(layout)
    write_ssh_config(layout)
    write_site_config(layout)
    write_env(layout)


def make_keys(layout):
    ssh = layout.state / "ssh"
    jobs = [["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hltsim-client",
             "-f", str(ssh / "id_ed25519")],
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", HEAD_NAME,
             "-f", str(layout.state / "head" / "hostkey")]]
    for name in layout.names:
        jobs.append(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                     "-f", str(layout.node_dir(name) / "hostkey")])
    run_all(jobs)
    client_pub = (ssh / "id_ed25519.pub").read_text()
    write_private(ssh / "authorized_keys", client_pub, 0o644)
    lines = []
    hosts = [(HEAD_NAME, layout.head_addr, layout.state / "head")]
    hosts += [(n, layout.node(n)["addr"], layout.node_dir(n)) for n in layout.names]
    for name, addr, where in hosts:
        keytype, key = (where / "hostkey.pub").read_text().split()[:2]
        lines.append(f"{name},{short(name)},{addr} {keytype} {key}")
    (ssh / "known_hosts").write_text("\n".join(lines) + "\n")


def write_ssh_config(layout):
    ssh = layout.state / "ssh"
    blocks = []
    hosts = [(HEAD_NAME, layout.head_addr)] + [(n, layout.node(n)["addr"]) for n in layout.names]
    for name, addr in hosts:
        port = f"    Port {HEAD_SSH_PORT}\n" if name == HEAD_NAME else ""
        blocks.append(f"Host {name} {short(name)}\n    HostName {addr}\n{port}"
                      f"    HostKeyAlias {name}\n")
    blocks.append(
        "Host *\n"
        "    User root\n"
        f"    IdentityFile {ssh / 'id_ed25519'}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {ssh / 'known_hosts'}\n"
        "    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n"
        f"    ConnectTimeout {CONNECT_TIMEOUT}\n"
        "    LogLevel ERROR\n")
    write_private(ssh / "config", "\n".join(blocks), 0o644)


def write_site_config(layout):
    service = f"{NODE_SERVICE} {{service}}"
    (layout.config_path).write_text(
        "# hltcloud site configuration for the simulated cluster (written by `cluster up`)\n"
        "[ssh]\n"
        f"config = {layout.ssh_config}\n"
        f"connect_timeout = {CONNECT_TIMEOUT}\n"
        "[services]\n"
        f"start = {service} start\n"
        f"stop = {service} stop\n"
        f"status = {service} status\n"
        "[paths]\n"
        f"glance_images_dir = {layout.state / 'glance' / 'images'}\n"
        "image_owner = root:root\n"
        "[runvms]\n"
        "flavor = ali1.xlarge\n"
        "image = CentOS6-build13\n"
        "key_name = WorkerNodesSsh\n"
        f"user_data = {layout.state / 'wn-user-data.txt'}\n"
        "name = wn-grid\n")


def write_env(layout):
    # The password itself is not written out: the line reads it from its mode 600 file.
    password_file = shlex.quote(str(layout.state / "admin-password"))
    lines = [f"export {k}={shlex.quote(v)}" if k != "OS_PASSWORD"
             else f'export OS_PASSWORD="$(cat {password_file})"'
             for k, v in layout.env_vars().items()]
    write_private(layout.state / "env", "\n".join(lines) + "\n")


def make_network(layout):
    br = layout.bridge
    root = [f"link add {br} type bridge", f"addr add {layout.head_addr}/26 dev {br}",
            f"link set {br} up"]
    for name in layout.names:
        root.append(f"netns add {layout.node(name)['netns']}")
    ip_batch(root)
    links = []
    for name in layout.names:
        node = layout.node(name)
        links.append(f"link add {node['veth']} type veth peer name eth0 netns {node['netns']}")
        links.append(f"link set {node['veth']} master {br} up")
    ip_batch(links)
    procs = []
    for name in layout.names:
        node = layout.node(name)
        cmds = f"addr add {node['addr']}/26 dev eth0\nlink set eth0 up\nlink set lo up\n"
        procs.append(subprocess.Popen(["ip", "-n", node["netns"], "-batch", "-"],
                                      stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs[-1].stdin.write(cmds)
        procs[-1].stdin.close()
    errors = [p.stderr.read().strip() for p in procs if p.wait() != 0]
    if errors:
        raise ClusterError(f"node network: {errors[0]}")


def sshd_config_text(layout, addr, where, env_node, port=22):
    return (
        f"ListenAddress {addr}\n"
        f"Port {port}\n"
        f"HostKey {where / 'hostkey'}\n"
        f"PidFile {where / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {layout.state / 'ssh' / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "UseDNS no\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "MaxStartups 100:30:200\n"
        "MaxSessions 50\n"
        "LogLevel ERROR\n"
        "Subsystem sftp internal-sftp\n"
        f"SetEnv HLT_NODE={env_node} HLT_SIM_URL=http://{layout.head_addr}:{layout.port} "
        f"HLT_SIM_STATE={layout.state}\n")


# Constant shell text; the node's directory, config, log and name arrive as "$1".."$4".
_NODE_SHELL = ('mount --bind "$1" /var/lib/nova && hostname "$4" && '
               'exec /usr/sbin/sshd -f "$2" -E "$3"')


def start_sshds(layout):
    argvs = []
    pidfiles = []
    for name in layout.names:
        where = layout.node_dir(name)
        node = layout.node(name)
        (where / "sshd_config").write_text(sshd_config_text(layout, node["addr"], where, name))
        argvs.append(["ip", "netns", "exec", node["netns"],
                      "unshare", "--mount", "--uts", "--propagation", "private",
                      "sh", "-c", _NODE_SHELL, "sh", str(where / "nova"),
                      str(where / "sshd_config"), str(where / "sshd.log"), name])
        pidfiles.append(where / "sshd.pid")
    # The head: nodes reach it with the same config (it plays openstack.internal).
    head = layout.state / "head"
    (head / "sshd_config").write_text(
        sshd_config_text(layout, layout.head_addr, head, HEAD_NAME, HEAD_SSH_PORT))
    argvs.append([SSHD, "-f", str(head / "sshd_config"), "-E", str(head / "sshd.log")])
    pidfiles.append(head / "sshd.pid")
    run_all(argvs)  # each sshd forks into the background once its socket listens
    wait_for(lambda: all(read_pid(p) for p in pidfiles), 10, "sshd pid files")
    record_pid(layout.state, read_pid(head / "sshd.pid"), "head-sshd")


def start_simulator(layout, timeout=30):
    log = open(layout.state / "simulator.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, str(SIMULATOR), "--state", str(layout.state),
         "--listen", f"127.0.0.1,{layout.head_addr}", "--port", str(layout.port),
         "--hosts", ",".join(layout.names)],  # node-backed hypervisors
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=str(layout.state))
    log.close()
    record_pid(layout.state, proc.pid, "simulator")

    def healthy():
        if proc.poll() is not None:
            tail = (layout.state / "simulator.log").read_text(errors="replace").strip()
            raise ClusterError(f"simulator exited ({proc.returncode}): "
                               f"{tail.splitlines()[-1] if tail else 'no output'}")
        try:
            with urllib.request.urlopen(f"{layout.sim_url}/sim/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False
    wait_for(healthy, timeout, "the simulator's /sim/health")
    return proc.pid


def simulator_running(layout):
    try:
        with urllib.request.urlopen(f"{layout.sim_url}/sim/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


# ---------------------------------------------------------------- down

def slot_netns(slot):
    proc = run(["ip", "netns", "list"], check=False)
    prefix = f"hlt{slot}-"
    return [line.split()[0] for line in proc.stdout.splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


def node_pids(state):
    """Every pid file of node daemons and sshds under STATE/nodes."""
    pids = []
    nodes = Path(state) / "nodes"
    if nodes.is_dir():
        for where in nodes.iterdir():
            pids.append(read_pid(where / "sshd.pid"))
            run_dir = where / "run"
            if run_dir.is_dir():
                pids += [read_pid(p) for p in run_dir.glob("*.pid")]
    return [p for p in pids if p]


def teardown_slot(slot, state=None, quiet=False):
    """Remove everything of SLOT: recorded pids, the slot's namespaces, its bridge, its state.

    Works from whatever is left: a full state dir, a partial one, or none at all.
    """
    state = Path(state or default_state(slot))
    pids = recorded_pids(state) + node_pids(state)
    head_pid = read_pid(state / "head" / "sshd.pid")
    if head_pid:
        pids.append(head_pid)
    namespaces = slot_netns(slot)
    for ns in namespaces:  # anything still inside our namespaces is ours
        pids += [int(p) for p in run(["ip", "netns", "pids", ns], check=False).stdout.split()]
    kill_pids(pids)
    if namespaces:
        ip_batch_quiet([f"netns del {ns}" for ns in namespaces])
    if Path(f"/sys/class/net/{bridge(slot)}").exists():
        run(["ip", "link", "del", bridge(slot)], check=False)
    for link in Path("/sys/class/net").iterdir():  # veths whose peers vanished oddly
        if re.fullmatch(rf"hlt{slot}v\d\d", link.name):
            run(["ip", "link", "del", link.name], check=False)
    if (state / "slot").exists() or (state / "cluster.json").exists():
        shutil.rmtree(state, ignore_errors=True)
    if not quiet:
        print(f"slot {slot}: down ({len(namespaces)} namespaces removed)")


def clean_stale_slots():
    """Tear down the remains of crashed clusters: any slot whose lock is free but which
    still has namespaces, a bridge or a state dir. The lock is held while cleaning."""
    for slot in SLOTS:
        fd = try_lock(slot)
        if fd is None:
            continue
        try:
            state = recorded_state(slot)
            if slot_netns(slot) or Path(f"/sys/class/net/{bridge(slot)}").exists() \
                    or (state / "slot").exists():
                teardown_slot(slot, state, quiet=True)
        finally:
            os.close(fd)


def ip_batch_quiet(lines):
    subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                   capture_output=True, text=True)


# ---------------------------------------------------------------- faults and shaping

def _link_state_path(layout, name):
    return layout.node_dir(name) / "link.json"


def link_state(layout, name):
    try:
        return json.loads(_link_state_path(layout, name).read_text())
    except (OSError, ValueError):
        return {"down": False, "delay": None, "rate": None}


def _save_link_state(layout, name, link):
    _link_state_path(layout, name).write_text(json.dumps(link))


def check_rate(rate):
    if not isinstance(rate, str) or not _RATE.match(rate):
        raise ClusterError(f"invalid rate: {rate!r} (e.g. 100mbit)")
    return rate


def _rate_bits(rate):
    return float(re.match(r"[0-9.]+", rate).group()) * _UNITS[re.sub(r"[0-9.]", "", rate)]


rate_bits = _rate_bits  # public name (bench scripts)


def _qdisc_cmds(dev, delay, rate, netem=True):
    """tc commands (argument lists without 'tc') rebuilding DEV's root qdisc.

    Without netem in the kernel (sch_netem is not built into every VM kernel), "slow"
    becomes a narrow link instead: tbf at SLOW_RATE (or less).
    """
    cmds = [["qdisc", "del", "dev", dev, "root"]]
    parent = ["root"]
    if delay and netem:
        cmds.append(["qdisc", "add", "dev", dev, "root", "handle", "1:", "netem",
                     "delay", delay, "limit", "10000"])
        parent = ["parent", "1:1"]
    elif delay:
        rate = SLOW_RATE if not rate or _rate_bits(SLOW_RATE) < _rate_bits(rate) else rate
    if rate:
        burst = max(32 * 1024, int(_rate_bits(rate) / 8 / 100))  # 10 ms worth of bytes
        cmds.append(["qdisc", "add", "dev", dev, *parent, "handle", "10:", "tbf", "rate", rate,
                     "burst", str(burst), "latency", "50ms"])
    return cmds


def _tc(prefix, cmds):
    """Run tc commands; False if the kernel lacks a qdisc kind (then nothing is left half set)."""
    for cmd in cmds:
        proc = run([*prefix, *cmd], check=False)
        if proc.returncode != 0 and cmd[1] != "del":
            if "qdisc kind is unknown" in proc.stderr:
                run([*prefix, "qdisc", "del", "dev", cmd[3], "root"], check=False)
                return False
            raise ClusterError(f"tc {' '.join(cmd)}: {proc.stderr.strip()}")
    return True


def apply_link(layout, name, link):
    """Make NAME's link match LINK {"down", "delay", "rate"} on both ends."""
    node = layout.node(name)
    for prefix, dev in ((["tc"], node["veth"]), (["tc", "-n", node["netns"]], "eth0")):
        if not _tc(prefix, _qdisc_cmds(dev, link["delay"], link["rate"])):
            _tc(prefix, _qdisc_cmds(dev, link["delay"], link["rate"], netem=False))
    run(["ip", "link", "set", node["veth"], "down" if link["down"] else "up"])
    _save_link_state(layout, name, link)


def fault(layout, name, kind):
    link = link_state(layout, name)
    if kind == "down":
        link["down"] = True
    elif kind == "slow":
        link["delay"] = SLOW_DELAY
    elif kind == "up":
        link["down"], link["delay"] = False, None
    else:
        raise ClusterError(f"fault kind must be down, slow or up, not {kind!r}")
    apply_link(layout, name, link)


def shape(layout, name, rate):
    link = link_state(layout, name)
    link["rate"] = None if rate in (None, "off") else check_rate(rate)
    apply_link(layout, name, link)


def heal_all(layout):
    """No faults, no shaping, on every node (only touches links that were changed)."""
    for name in layout.names:
        if _link_state_path(layout, name).exists():
            apply_link(layout, name, {"down": False, "delay": None, "rate": None})
            _link_state_path(layout, name).unlink()


# ---------------------------------------------------------------- status

def status_lines(layout):
    lines = [f"slot {layout.slot}  state {layout.state}  head {HEAD_NAME} {layout.head_addr}"
             f"  simulator {layout.sim_url} "
             f"{'up' if simulator_running(layout) else 'not answering'}"]
    for name in layout.names:
        node = layout.node(name)
        sshd = read_pid(layout.node_dir(name) / "sshd.pid")
        link = link_state(layout, name)
        services = sorted(p.stem for p in layout.run_dir(name).glob("*.pid")
                          if pid_alive(read_pid(p)))
        flags = [f for f, on in (("link-down", link["down"]), ("slow",
                 link["delay"]), (f"rate {link['rate']}", link["rate"])) if on]
        lines.append(f"{name:<20} {node['addr']:<14} {node['netns']:<10} "
                     f"sshd {'up' if sshd and pid_alive(sshd) else 'DOWN'}"
                     f"{'  ' + ', '.join(flags) if flags else ''}"
                     f"  services: {' '.join(services) or '-'}")
    return lines


def find_state(slot=None, state=None):
    """The state dir of an existing cluster: --state, --slot, or the only one there is."""
    if state:
        return check_state_path(state)
    if slot is not None:
        return recorded_state(check_slot(slot))
    existing = [recorded_state(k) for k in SLOTS if (recorded_state(k) / "slot").exists()]
    if len(existing) == 1:
        return existing[0]
    if not existing:
        raise ClusterError("no cluster is up (cluster up)")
    raise ClusterError("several clusters are up: say --slot K ("
                       + ", ".join(p.name for p in existing) + ")")
