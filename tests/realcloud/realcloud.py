"""A real OpenStack control plane for the tests: Keystone, Nova, Placement, Glance from PyPI.

PostgreSQL and RabbitMQ come from Debian's packages, each as a private instance (own data
dir, port, node name) started and stopped here by recorded pids. The WSGI applications
run under tests/realcloud/wsgi_server.py. Everything lives in one state directory:

    $RC/pids                 "<pid> <name>" of every process started on the head
    $RC/etc/...              configuration of each service (mode 600: holds passwords)
    $RC/log/...              service logs and the WSGI access logs (<app>-access.log)
    $RC/pg, $RC/rabbit       the private database and message bus
    $RC/glance/images        Glance's file store (image files named by image id)
    $RC/nodes/<node>/        per node: nova-compute config, compute_id, log, pid file
    $RC/env, hltcloud.conf   credentials for the tools, site configuration

Ports of slot K: base 6100 + 20 K; keystone +0, nova +1, placement +2, glance +3,
network stub +4, postgres +5, rabbitmq +6, erlang distribution +7, epmd +8.
"""
import functools
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # tests/: helpers.py
import helpers  # noqa: E402
VENV = Path(os.environ.get("HLTREAL_VENV", "/opt/hltcloud-realcloud/venv"))
VPY = VENV / "bin" / "python"
DEB_PKGS = ["postgresql", "rabbitmq-server"]
# The versions the real-cloud suite was proven with (tests/realcloud/README.md).
PIP_PKGS = ["nova==34.0.0", "keystone==30.0.0", "openstack-placement==16.0.0", "glance==33.0.0",
            "psycopg2-binary==2.9.13"]
DATABASES = ["keystone", "nova_api", "nova", "nova_cell0", "placement", "glance"]
APPS = ["keystone", "nova", "placement", "glance", "network"]
PORT_OFFSETS = {"keystone": 0, "nova": 1, "placement": 2, "glance": 3, "network": 4,
                "postgres": 5, "rabbit": 6, "erldist": 7, "epmd": 8}
REGION = "RegionOne"
# Heartbeats every 2 s, a compute counts as down 10 s after its last one (defaults: 10/60).
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
# A simulated worker node, as the simulator reports it: VCPU 8 (ratio 2.0), 16384 MB RAM
# (512 reserved), 400 GB disk. The fake driver reports 1000 vCPU / 800000 MB / 600000 GB,
# so the difference is reserved.
FAKE_VCPUS, FAKE_RAM_MB, FAKE_DISK_GB = 1000, 800000, 600000
NODE_VCPUS, NODE_RAM_MB, NODE_RAM_RESERVED_MB, NODE_DISK_GB = 8, 16384, 512, 400
FLAVOR = {"name": "ali1.xlarge", "vcpus": 4, "ram": 4096, "disk": 40}


class RealCloudError(Exception):
    """Reported in one line; `up` removes what it made before raising it."""


def ports(slot):
    base = 6100 + 20 * slot
    return {name: base + offset for name, offset in PORT_OFFSETS.items()}


def default_state(slot):
    return Path(f"/tmp/hltreal-{slot}")


def log(message):
    print(f"realcloud: {message}", flush=True)


# ---------------------------------------------------------------- install

def install():
    """Idempotent: the Debian packages and the venv of the services (kept apart from the tools')."""
    t0 = time.monotonic()
    missing = [p for p in DEB_PKGS
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for attempt in range(30):  # another apt may hold the dpkg lock
            proc = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env,
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                break
            if "lock" not in proc.stderr:
                subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
            time.sleep(5)
        else:
            raise RealCloudError(f"apt-get install {' '.join(missing)} failed: "
                                 f"{proc.stderr.strip().splitlines()[-1:]}")
    if not VPY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = "import nova, keystone, placement, glance, psycopg2"
    if subprocess.run([str(VPY), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(VPY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PIP_PKGS], check=True)
    log(f"installed in {time.monotonic() - t0:.1f}s (venv {VENV})")


def installed():
    return VPY.exists() and all(
        subprocess.run(["dpkg", "-s", p], capture_output=True).returncode == 0 for p in DEB_PKGS)


# ---------------------------------------------------------------- small helpers

def write_private(path, text, mode=0o600):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def ini(sections):
    out = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out += [f"{key} = {value}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)


wait_for = functools.partial(helpers.wait_for, step=0.2, error=RealCloudError,
                             message="{what} not ready after {timeout}s")


def port_open(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours is dead
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def kill_groups(pids, first=signal.SIGTERM, grace=10.0):
    """Stop each recorded process group leader (and its children) TERM then KILL."""
    for pid in pids:
        try:
            os.killpg(pid, first)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in pids:  # reap our own children if we started them in this process
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


# ---------------------------------------------------------------- the layout of one cloud

class RealCloud:
    def __init__(self, state, slot=0, head=None):
        self.state = Path(state)
        self.slot = slot
        self.head = head  # the bridge address nodes reach the head at (None: loopback only)
        self.ports = ports(slot)
        self.also_record = []  # other pid files that must know our pids (the slot's)

    @classmethod
    def load(cls, state):
        data = json.loads((Path(state) / "realcloud.json").read_text())
        return cls(state, data["slot"], data["head"])

    def save(self):
        (self.state / "realcloud.json").write_text(json.dumps(
            {"slot": self.slot, "head": self.head, "ports": self.ports}, indent=1))

    @property
    def addr(self):
        """The address in the catalog and the configs: reachable from head and nodes."""
        return self.head or "127.0.0.1"

    @property
    def listen(self):
        return "127.0.0.1" + (f",{self.head}" if self.head else "")

    def url(self, app):
        path = {"keystone": "/v3", "nova": "/v2.1"}.get(app, "")
        return f"http://{self.addr}:{self.ports[app]}{path}"

    def secret(self, name):
        return (self.state / "secrets" / name).read_text().strip()

    def db_url(self, name):
        return (f"postgresql+psycopg2://hlt:{self.secret('db')}@{self.addr}:"
                f"{self.ports['postgres']}/{name}")

    @property
    def transport_url(self):
        return f"rabbit://hlt:{self.secret('rabbit')}@{self.addr}:{self.ports['rabbit']}/"

    def node_dir(self, name):
        return self.state / "nodes" / name

    def env_vars(self):
        return {
            "OS_AUTH_URL": f"http://127.0.0.1:{self.ports['keystone']}/v3",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": self.secret("admin"),
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": REGION,
            "HLTCLOUD_CONFIG": str(self.state / "hltcloud.conf"),
            "HLTCLOUD_CACHE_DIR": str(self.state / "cache"),  # status keeps host names there
        }

    # -- processes

    def spawn(self, name, argv, env=None, user=None):
        """Start a detached process group, stdio to log/<name>.log, pid recorded."""
        logdir = self.state / "log"
        logdir.mkdir(exist_ok=True)
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv]
        with open(logdir / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=env, start_new_session=True, cwd=self.state)
        for pids_file in (self.state / "pids", *self.also_record):
            with open(pids_file, "a") as handle:
                handle.write(f"{proc.pid} {name}\n")
        return proc

    def recorded(self):
        out = []
        try:
            for line in (self.state / "pids").read_text().splitlines():
                pid, name = line.split(maxsplit=1)
                out.append((int(pid), name))
        except (OSError, ValueError):
            pass
        return out

    def venv_env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def manage(self, argv, timeout=300, **extra):
        """Run a *-manage command of the venv, failing with its last line of output."""
        proc = subprocess.run([str(VENV / "bin" / argv[0]), *argv[1:]], env=self.venv_env(**extra),
                              capture_output=True, text=True, timeout=timeout, cwd=self.state)
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise RealCloudError(f"{argv[0]} {argv[1]} failed: {' | '.join(tail)}")
        return proc.stdout


# ---------------------------------------------------------------- postgres and rabbitmq

def pg_bin():
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                      key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RealCloudError("PostgreSQL is not installed: run `realcloud install`")
    return versions[-1].parent


def start_postgres(rc):
    data, sock = rc.state / "pg", rc.state / "pg-run"
    for where in (data, sock):
        where.mkdir(mode=0o700)
        shutil.chown(where, "postgres", "postgres")
    proc = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                           str(pg_bin() / "initdb"), "-D", str(data), "-U", "postgres",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                           "--no-sync", "--no-instructions"],
                          capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise RealCloudError(f"initdb failed: {proc.stderr.strip().splitlines()[-1:]}")
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write("host all all 198.18.0.0/24 scram-sha-256\n")
    # A throwaway database: durability is not wanted, speed is.
    rc.spawn("postgres", [str(pg_bin() / "postgres"), "-D", str(data), "-p",
                          str(rc.ports["postgres"]), "-k", str(sock), "-c",
                          f"listen_addresses={rc.listen}", "-c", "fsync=off", "-c",
                          "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                          "max_connections=400"], user="postgres")


def setup_databases(rc):
    wait_for(lambda: port_open("127.0.0.1", rc.ports["postgres"]), 30, "PostgreSQL")
    # Listening is not accepting: right after start it answers "the database system is
    # starting up" for a moment (seen on a loaded machine).
    ready = [str(pg_bin() / "pg_isready"), "-q", "-h", str(rc.state / "pg-run"), "-p",
             str(rc.ports["postgres"])]
    wait_for(lambda: subprocess.run(ready, capture_output=True, cwd="/").returncode == 0, 30,
             "PostgreSQL to accept connections")
    password = rc.secret("db").replace("'", "''")
    sql = [f"CREATE ROLE hlt LOGIN PASSWORD '{password}';"]
    sql += [f"CREATE DATABASE {db} OWNER hlt;" for db in DATABASES]
    # The SQL (with the password) goes through stdin, never on a command line.
    proc = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                           str(pg_bin() / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h",
                           str(rc.state / "pg-run"), "-p", str(rc.ports["postgres"]), "-U",
                           "postgres", "-d", "postgres"],
                          input="\n".join(sql) + "\n", capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise RealCloudError(f"creating the databases failed: {proc.stderr.strip()}")


def start_rabbitmq(rc):
    base = rc.state / "rabbit"
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(parents=True)
    listeners = [f"listeners.tcp.{i} = {a}:{rc.ports['rabbit']}"
                 for i, a in enumerate(rc.listen.split(","), 1)]
    write_private(base / "rabbitmq.conf", "\n".join(listeners + [
        "loopback_users = none",  # computes connect from the nodes' addresses
        "default_user = hlt",
        f"default_pass = {rc.secret('rabbit')}",
        "disk_free_limit.absolute = 50MB",
        "log.console = false",
        "log.file.level = warning",
    ]) + "\n")
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")
    write_private(base / ".erlang.cookie", secrets.token_hex(16), 0o400)
    env = rc.venv_env(
        HOME=str(base),
        RABBITMQ_NODENAME=f"hltreal{rc.slot}@localhost",
        RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(base / "log"),
        RABBITMQ_PID_FILE=str(base / "pid"),
        RABBITMQ_DIST_PORT=str(rc.ports["erldist"]),
        ERL_EPMD_PORT=str(rc.ports["epmd"]),
    )
    # Our own epmd on a private port, so nothing of ours outlives `down`.
    rc.spawn("epmd", ["epmd", "-port", str(rc.ports["epmd"]), "-address", "127.0.0.1"], env=env)
    wait_for(lambda: port_open("127.0.0.1", rc.ports["epmd"]), 10, "epmd")
    # The script waits for the VM it starts; `down` stops the whole process group.
    rc.spawn("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env)


# ---------------------------------------------------------------- service configuration

def authtoken(rc):
    return {
        "www_authenticate_uri": rc.url("keystone"),
        "auth_url": rc.url("keystone"),
        "auth_type": "password",
        "username": "admin",
        "password": rc.secret("admin"),
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": REGION,
    }


def service_auth(rc):
    auth = authtoken(rc)
    del auth["www_authenticate_uri"]
    return dict(auth, valid_interfaces="internal,public")


def write_configs(rc):
    etc = rc.state / "etc"
    write_private(etc / "keystone" / "keystone.conf", ini({
        "DEFAULT": {"log_file": rc.state / "log" / "keystone.log"},
        "database": {"connection": rc.db_url("keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": etc / "keystone" / "fernet-keys"},
        "credential": {"key_repository": etc / "keystone" / "credential-keys"},
    }))
    nova = {
        "DEFAULT": {
            "host": "openstack.internal",  # conductor and scheduler; computes: the node
            "transport_url": rc.transport_url,
            "state_path": rc.state / "nova-state",
            "my_ip": rc.addr,
            "report_interval": REPORT_INTERVAL,
            "service_down_time": SERVICE_DOWN_TIME,
            "graceful_shutdown_timeout": 5,
            "log_dir": "",
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": etc / "nova" / "api-paste.ini"},
        "api_database": {"connection": rc.db_url("nova_api")},
        "database": {"connection": rc.db_url("nova")},
        "keystone_authtoken": authtoken(rc),
        "placement": service_auth(rc),
        "glance": {"valid_interfaces": "internal,public", "region_name": REGION},
        "neutron": service_auth(rc),
        "scheduler": {"discover_hosts_in_cells_interval": 2, "workers": 1},
        "conductor": {"workers": 1},
        "oslo_concurrency": {"lock_path": rc.state / "nova-state" / "lock"},
        "oslo_messaging_notifications": {"driver": "noop"},
        "vnc": {"enabled": "false"},
    }
    write_private(etc / "nova" / "nova.conf", ini(nova))
    shutil.copy(VENV / "etc" / "nova" / "api-paste.ini", etc / "nova" / "api-paste.ini")
    # nova-compute on the nodes: the same, plus the fake driver sized like a worker node.
    # host, state_path and instances_path come from the node's own file (node-service).
    compute = dict(nova)
    compute["DEFAULT"] = dict(nova["DEFAULT"], **{
        "compute_driver": "fake.FakeDriverWithoutFakeNodes",
        "reserved_host_cpus": FAKE_VCPUS - NODE_VCPUS,
        "cpu_allocation_ratio": "2.0",
        "reserved_host_memory_mb": FAKE_RAM_MB - NODE_RAM_MB + NODE_RAM_RESERVED_MB,
        "ram_allocation_ratio": "1.0",
        "reserved_host_disk_mb": (FAKE_DISK_GB - NODE_DISK_GB) * 1024,
        "disk_allocation_ratio": "1.0",
    })
    for key in ("api", "wsgi", "api_database", "keystone_authtoken", "scheduler"):
        compute.pop(key)
    write_private(etc / "nova-compute.conf", ini(compute))
    write_private(etc / "placement" / "placement.conf", ini({
        "placement_database": {"connection": rc.db_url("placement")},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": authtoken(rc),
    }))
    glance_dir = rc.state / "glance"
    write_private(etc / "glance" / "glance-api.conf", ini({
        "DEFAULT": {"enabled_backends": "fs:file"},
        "database": {"connection": rc.db_url("glance")},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": glance_dir / "images"},
        "os_glance_staging_store": {"filesystem_store_datadir": glance_dir / "staging"},
        "os_glance_tasks_store": {"filesystem_store_datadir": glance_dir / "tasks"},
        "keystone_authtoken": authtoken(rc),
        "paste_deploy": {"flavor": "keystone"},
    }))
    shutil.copy(VENV / "etc" / "glance" / "glance-api-paste.ini",
                etc / "glance" / "glance-api-paste.ini")
    for sub in ("images", "staging", "tasks"):
        (glance_dir / sub).mkdir(parents=True, exist_ok=True)
    (rc.state / "nova-state" / "lock").mkdir(parents=True, exist_ok=True)


def app_env(rc, app):
    etc = rc.state / "etc"
    return rc.venv_env(**{
        "keystone": {"OS_KEYSTONE_CONFIG_DIR": str(etc / "keystone"),
                     "OS_KEYSTONE_CONFIG_FILES": "keystone.conf"},
        "nova": {"OS_NOVA_CONFIG_DIR": str(etc / "nova")},
        "placement": {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")},
        "glance": {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")},
        "network": {},
    }[app])


def start_app(rc, app):
    rc.spawn(app, [str(VPY), str(HERE / "wsgi_server.py"), app, "--listen", rc.listen,
                   "--port", str(rc.ports[app]),
                   "--access-log", str(rc.state / "log" / f"{app}-access.log")],
             env=app_env(rc, app))


# ---------------------------------------------------------------- database schemas

def sync_keystone(rc):
    conf = ["--config-file", str(rc.state / "etc" / "keystone" / "keystone.conf")]
    rc.manage(["keystone-manage", *conf, "db_sync"])
    for what in ("fernet_setup", "credential_setup"):
        rc.manage(["keystone-manage", *conf, what, "--keystone-user", "root",
                   "--keystone-group", "root"])
    # The password comes from the environment (OS_BOOTSTRAP_PASSWORD), not the command line.
    rc.manage(["keystone-manage", *conf, "bootstrap",
               "--bootstrap-admin-url", rc.url("keystone"),
               "--bootstrap-public-url", rc.url("keystone"),
               "--bootstrap-internal-url", rc.url("keystone"),  # keystonemiddleware wants it
               "--bootstrap-region-id", REGION], OS_BOOTSTRAP_PASSWORD=rc.secret("admin"))


def keystone_up(rc):
    sync_keystone(rc)
    start_app(rc, "keystone")
    wait_for(lambda: http_ready(f"http://127.0.0.1:{rc.ports['keystone']}/v3"), 60, "Keystone")
    make_catalog(rc)


def sync_nova(rc):
    conf = ["--config-file", str(rc.state / "etc" / "nova" / "nova.conf")]
    rc.manage(["nova-manage", *conf, "api_db", "sync"])
    rc.manage(["nova-manage", *conf, "cell_v2", "map_cell0"])  # nova -> nova_cell0
    rc.manage(["nova-manage", *conf, "cell_v2", "create_cell", "--name", "cell1"])
    rc.manage(["nova-manage", *conf, "db", "sync"])


def sync_placement(rc):
    rc.manage(["placement-manage", "--config-file",
               str(rc.state / "etc" / "placement" / "placement.conf"), "db", "sync"])


def sync_glance(rc):
    rc.manage(["glance-manage", "--config-file",
               str(rc.state / "etc" / "glance" / "glance-api.conf"), "db_sync"])


def run_parallel(functions):
    """Run the schema syncs side by side (each is mostly waiting for its interpreter)."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(len(functions)) as pool:
        futures = [pool.submit(f) for f in functions]
        for future in futures:
            future.result()


# ---------------------------------------------------------------- the catalog

def keystone_request(rc, method, path, body=None, token=None):
    url = f"http://127.0.0.1:{rc.ports['keystone']}/v3{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
        return response.headers, (json.loads(payload) if payload else None)


def admin_token(rc):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": rc.secret("admin")}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    headers, _ = keystone_request(rc, "POST", "/auth/tokens", body)
    return headers["X-Subject-Token"]


def make_catalog(rc):
    token = admin_token(rc)
    for app, stype in (("nova", "compute"), ("placement", "placement"), ("glance", "image"),
                       ("network", "network")):
        _, created = keystone_request(rc, "POST", "/services",
                                      {"service": {"type": stype, "name": app}}, token)
        for interface in ("public", "internal", "admin"):
            keystone_request(rc, "POST", "/endpoints", {"endpoint": {
                "service_id": created["service"]["id"], "interface": interface,
                "url": rc.url(app), "region_id": REGION}}, token)


# ---------------------------------------------------------------- up / down

def http_ready(url):
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer: the app is loaded
    except OSError:
        return False


def up(state=None, slot=0, head=None, also_record=()):
    """Bring the control plane up. ALSO_RECORD: pid files to append our pids to as well
    (the simulated cluster's $STATE/pids, so that its teardown stops us after a crash)."""
    t0 = time.monotonic()
    if not installed():
        raise RealCloudError("not installed: run `realcloud install` first")
    state = Path(state or default_state(slot))
    if (state / "pids").exists():
        down(state, quiet=True)
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    os.chmod(state, 0o755)  # postgres (its own user) reaches its data dir through it
    rc = RealCloud(state, slot, head)
    rc.also_record = [Path(p) for p in also_record]
    rc.save()
    try:
        for name in ("admin", "db", "rabbit"):
            write_private(state / "secrets" / name, secrets.token_urlsafe(18) + "\n")
        os.chmod(state / "secrets", 0o700)
        for app in ("postgres", *APPS, "rabbit"):
            if port_open("127.0.0.1", rc.ports[app]):
                raise RealCloudError(f"port {rc.ports[app]} ({app}) is already in use")
        start_postgres(rc)
        start_rabbitmq(rc)
        write_configs(rc)
        setup_databases(rc)
        t1 = time.monotonic()
        # Keystone (and its catalog) comes up while Nova's longer schema chain runs.
        run_parallel([lambda: keystone_up(rc), lambda: sync_nova(rc),
                      lambda: sync_placement(rc), lambda: sync_glance(rc)])
        log(f"databases and Keystone ready in {time.monotonic() - t1:.1f}s")
        for app in APPS[1:]:
            start_app(rc, app)
        wait_for(lambda: port_open("127.0.0.1", rc.ports["rabbit"]), 60, "RabbitMQ")
        nova_conf = ["--config-file", str(state / "etc" / "nova" / "nova.conf")]
        for service in ("nova-conductor", "nova-scheduler"):
            rc.spawn(service, [str(VENV / "bin" / service), *nova_conf, "--log-file",
                               str(state / "log" / f"{service}.log")], env=rc.venv_env())
        for app in APPS[1:]:
            wait_for(lambda: http_ready(f"http://127.0.0.1:{rc.ports[app]}/"), 90, app)
        write_tool_files(rc)
        wait_for(lambda: control_services_up(rc), 90, "nova-conductor and nova-scheduler")
    except BaseException:
        down(state, quiet=True, keep_state=True)
        raise
    log(f"up in {time.monotonic() - t0:.1f}s, state {state}")
    return rc


def control_services_up(rc):
    try:
        services = nova_api(rc, "GET", "/os-services")["services"]
    except (OSError, ValueError, KeyError):
        return False
    up_binaries = {s["binary"] for s in services if s["state"] == "up"}
    return {"nova-conductor", "nova-scheduler"} <= up_binaries


def nova_api(rc, method, path, body=None, microversion="2.60"):
    """A small stdlib client for readiness checks and setup (the tests use the real clients)."""
    token = admin_token(rc)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{rc.ports['nova']}/v2.1{path}", data=data,
                                     method=method, headers={
                                         "Content-Type": "application/json", "X-Auth-Token": token,
                                         "OpenStack-API-Version": f"compute {microversion}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = response.read()
        return json.loads(payload) if payload else None


def write_tool_files(rc):
    """The tools' credentials (env) and a site config whose services are real on the nodes."""
    password_file = shlex.quote(str(rc.state / "secrets" / "admin"))
    lines = [f"export {k}={shlex.quote(v)}" if k != "OS_PASSWORD"
             else f'export OS_PASSWORD="$(cat {password_file})"'
             for k, v in rc.env_vars().items()]
    write_private(rc.state / "env", "\n".join(lines) + "\n")
    (rc.state / "wn-user-data.txt").write_text("#!/bin/sh\n# worker node user data (real cloud)\n")


def write_site_config(rc, ssh_config):
    service = f"{HERE / 'node-service'} --state {rc.state} {{service}}"
    (rc.state / "hltcloud.conf").write_text(
        "# hltcloud site configuration for the real cloud (written by tests/realcloud)\n"
        "[ssh]\n"
        f"config = {ssh_config}\n"
        "connect_timeout = 3\n"
        "[services]\n"
        f"start = {service} start\n"
        f"stop = {service} stop\n"
        f"status = {service} status\n"
        "[paths]\n"
        f"glance_images_dir = {rc.state / 'glance' / 'images'}\n"
        "image_owner = root:root\n"
        "[runvms]\n"
        f"flavor = {FLAVOR['name']}\n"
        "image = CentOS6-build13\n"
        "key_name = WorkerNodesSsh\n"
        f"user_data = {rc.state / 'wn-user-data.txt'}\n"
        "name = wn-grid\n"
        "# no Neutron: boot with nics='none' (microversion >= 2.37)\n"
        "network = none\n")


def node_pid_files(state):
    nodes = Path(state) / "nodes"
    return list(nodes.glob("*/*.pid")) if nodes.is_dir() else []


def down(state, quiet=False, keep_state=False):
    """Stop everything recorded (node computes first, the database last), remove the state."""
    state = Path(state)
    rc = RealCloud(state)
    node_pids = []
    for pid_file in node_pid_files(state):
        try:
            node_pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    recorded = rc.recorded()
    # Everything but the database at once (each in parallel gets the same grace).
    kill_groups([p for p in node_pids if pid_alive(p)] +
                [pid for pid, what in recorded if what != "postgres" and pid_alive(pid)])
    # PostgreSQL: SIGINT is its "fast" shutdown (TERM waits for every client to leave).
    kill_groups([pid for pid, what in recorded if what == "postgres" and pid_alive(pid)],
                first=signal.SIGINT)
    leftover = [pid for pid, _ in recorded if pid_alive(pid)]
    kill_groups(leftover, grace=2)
    if not keep_state and (state / "realcloud.json").exists():
        shutil.rmtree(state, ignore_errors=True)
    if not quiet:
        log(f"down ({len(recorded) + len(node_pids)} processes stopped)")


def status(state):
    rc = RealCloud.load(state)
    ok = True
    for pid, name in rc.recorded():
        alive = pid_alive(pid)
        ok &= alive
        print(f"{name:16} pid {pid:7} {'running' if alive else 'DEAD'}")
    for pid_file in node_pid_files(state):
        pid = int(pid_file.read_text().split()[0])
        print(f"{pid_file.parent.name + ' ' + pid_file.stem:16} pid {pid:7} "
              f"{'running' if pid_alive(pid) else 'DEAD'}")
    return 0 if ok else 1


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="realcloud", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install", "up", "down", "env", "status"])
    parser.add_argument("--slot", type=int, default=0, choices=range(4))
    parser.add_argument("--state", help="state directory (default /tmp/hltreal-<slot>)")
    parser.add_argument("--head", help="also listen on this bridge address (nodes reach it)")
    parser.add_argument("--ssh-config", help="ssh config for the site config (up)")
    args = parser.parse_args(argv)
    state = Path(args.state or default_state(args.slot))
    try:
        if args.action == "install":
            install()
        elif args.action == "up":
            rc = up(state, args.slot, args.head)
            if args.ssh_config:
                write_site_config(rc, args.ssh_config)
        elif args.action == "down":
            down(state)
        elif args.action == "env":
            sys.stdout.write((state / "env").read_text())
        elif args.action == "status":
            return status(state)
    except (RealCloudError, subprocess.CalledProcessError, OSError) as err:
        print(f"realcloud: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
