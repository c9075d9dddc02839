"""The head's adversaries played (issue 19, rows 4 and 8, items 5 and 6): a local user who
leaves a clouds.yaml or secure.yaml where root stands, or owns a file root reads, or makes
the lock directory first; a cloud that redirects, or whose Glance `next` link points at
another host. A recording listener on loopback stands for the place the credentials would
go: it must never be asked anything."""
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from helpers import NOBODY, closed_port

REPO = Path(__file__).resolve().parents[3]
MANAGE = "openstack-hlt-manage"
ROOT_PASSWORD = "roots-own-password"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request (method, path, token, body) and answers 200 {}."""

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, self.headers.get("X-Auth-Token"),
                                 body.decode(errors="replace")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """The recording listener: .url, .seen (every request it got)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.seen = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def tool(name, *args, env, cwd=None, timeout=120):
    return subprocess.run([str(REPO / "bin" / name), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def one_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stdout, result.stdout + result.stderr
    return lines[0]


def yaml_text(clouds):
    return yaml.safe_dump({"clouds": clouds})


def write_private(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def as_nobody_write(path, text):
    """PATH, with TEXT, created by the local user nobody (mode 0644)."""
    subprocess.run([*NOBODY, "sh", "-c", 'umask 022 && printf %s "$2" > "$1"', "x", str(path),
                    text], check=True)
    return path


def root_env(tmp_path, **extra):
    """Root's environment: HOME of its own, no OS_* variables, an empty site configuration."""
    home = tmp_path / "root-home"
    home.mkdir(exist_ok=True)
    conf = write_private(tmp_path / "site.conf", "")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_") and k != "HLTCLOUD_AUTH"}
    env.update(HOME=str(home), HLTCLOUD_CONFIG=str(conf),
               HLTCLOUD_LOCK_DIR=str(tmp_path / "locks"))
    env.update(extra)
    return env


def prod_auth(auth_url, password=ROOT_PASSWORD):
    auth = {"auth_url": auth_url, "username": "admin", "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default"}
    if password:
        auth["password"] = password
    return auth


def assert_untouched(listener, result):
    assert listener.seen == [], listener.seen
    assert ROOT_PASSWORD not in result.stdout + result.stderr


# ------------------------------------------------------------------ row 4: the current directory

@pytest.mark.parametrize("planted", ["secure.yaml", "clouds.yaml"])
def test_a_yaml_planted_in_the_current_directory_is_never_read(tmp_path, public_dir, listener,
                                                                planted):
    """Row 4: root runs a tool in a world-writable directory; nobody left a secure.yaml
    there (merged over root's clouds.yaml, whose password it has) or a clouds.yaml (into
    which root's own secure.yaml would merge the password)."""
    keystone = f"http://127.0.0.1:{closed_port()}/v3"
    env = root_env(tmp_path, OS_CLOUD="prod")
    conf = Path(env["HOME"]) / ".config" / "openstack"
    if planted == "secure.yaml":
        write_private(conf / "clouds.yaml", yaml_text({"prod": {"auth": prod_auth(keystone)}}))
        as_nobody_write(public_dir / planted,
                        yaml_text({"prod": {"auth": {"auth_url": listener.url + "/v3"}}}))
    else:
        write_private(conf / "clouds.yaml",
                      yaml_text({"prod": {"auth": prod_auth(keystone, password=None)}}))
        write_private(conf / "secure.yaml",
                      yaml_text({"prod": {"auth": {"password": ROOT_PASSWORD}}}))
        as_nobody_write(public_dir / planted, yaml_text(
            {"prod": {"auth": prod_auth(listener.url + "/v3", password=None)}}))
    result = tool(MANAGE, "status", env=env, cwd=public_dir)
    assert_untouched(listener, result)
    assert result.returncode == 3
    # Root's own files were used: its own Keystone (where nothing listens here).
    assert one_line(result).startswith(f"{MANAGE}: cannot reach Keystone at {keystone}: ")


# ------------------------------------------------------------------ item 5: whose files

@pytest.mark.parametrize("how", ["owned-by-nobody", "world-writable", "secure-owned-by-nobody"])
def test_a_clouds_or_secure_yaml_another_user_controls_is_refused(tmp_path, public_dir,
                                                                  listener, how):
    keystone = listener.url + "/v3"
    env = root_env(tmp_path, OS_CLOUD="prod")
    if how == "owned-by-nobody":
        path = as_nobody_write(public_dir / "clouds.yaml",
                               yaml_text({"prod": {"auth": prod_auth(keystone)}}))
        env["OS_CLIENT_CONFIG_FILE"] = str(path)
        problem = "is owned by nobody (uid 65534), not by root (uid 0) (chown it)"
    elif how == "world-writable":
        path = write_private(tmp_path / "conf" / "clouds.yaml",
                             yaml_text({"prod": {"auth": prod_auth(keystone)}}), mode=0o666)
        env["OS_CLIENT_CONFIG_FILE"] = str(path)
        problem = "is writable by others (mode 0666; chmod go-w it)"
    else:
        clouds = write_private(tmp_path / "conf" / "clouds.yaml", yaml_text(
            {"prod": {"auth": prod_auth(f"http://127.0.0.1:{closed_port()}/v3")}}))
        path = as_nobody_write(public_dir / "secure.yaml",
                               yaml_text({"prod": {"auth": {"auth_url": keystone}}}))
        env.update(OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLIENT_SECURE_FILE=str(path))
        problem = "is owned by nobody (uid 65534), not by root (uid 0) (chown it)"
    result = tool(MANAGE, "status", env=env)
    assert_untouched(listener, result)
    assert result.returncode == 3
    assert one_line(result) == f"{MANAGE}: cloud configuration {path} {problem}: refusing it"


def test_the_site_configuration_and_ssh_configuration_another_user_controls_are_refused(
        tmp_path, public_dir, listener):
    """Item 5's rule for every file root takes settings from: the site configuration
    ($HLTCLOUD_CONFIG, --config) and the ssh configuration (ssh checks only ~/.ssh/config)."""
    env = root_env(tmp_path, OS_AUTH_URL=listener.url + "/v3", OS_USERNAME="admin",
                   OS_PASSWORD=ROOT_PASSWORD, OS_PROJECT_NAME="admin")
    planted = as_nobody_write(public_dir / "hltcloud.conf", "[ssh]\nuser = root\n")
    shared = write_private(tmp_path / "shared.conf", "[ssh]\nuser = root\n", mode=0o664)
    nobodys = "is owned by nobody (uid 65534), not by root (uid 0) (chown it): refusing it"
    cases = [
        (dict(env, HLTCLOUD_CONFIG=str(planted)), ["status"], f"configuration {planted} {nobodys}"),
        (env, ["--config", str(shared), "status"],
         f"configuration {shared} is writable by others (mode 0664; chmod go-w it): refusing it"),
        (env, ["--ssh-config", str(planted), "status"], f"ssh configuration {planted} {nobodys}"),
    ]
    for case_env, args, message in cases:
        result = tool(MANAGE, *args, env=case_env)
        assert (result.returncode, one_line(result)) == (2, f"{MANAGE}: {message}")
    result = tool("openstack-enter", "--config", str(planted), "admin", "--", "true", env=env)
    assert (result.returncode, one_line(result)) == (
        2, f"openstack-enter: configuration {planted} {nobodys}")
    assert_untouched(listener, result)


def enter_config(tmp_path, clouds):
    """A site configuration whose root-only credentials directory holds CLOUDS."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    write_private(creds / "clouds.yaml", yaml_text(clouds))
    return creds, write_private(tmp_path / "enter.conf", f"[enter]\ncredentials_dir = {creds}\n")


def role_env(result):
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_openstack_enter_pins_the_secure_file_of_a_clouds_yaml_role(tmp_path, public_dir):
    """The openstack CLI in a role's shell would look for ./secure.yaml first: the role's
    environment names the secure file, the credentials directory's own or, without one, the
    clouds.yaml itself (merged over itself: nothing changes)."""
    creds, conf = enter_config(tmp_path, {"ops": {"auth": prod_auth("http://127.0.0.1:1/v3")}})
    env = root_env(tmp_path)
    as_nobody_write(public_dir / "secure.yaml", yaml_text({"ops": {"auth": {"auth_url": "x"}}}))
    result = tool("openstack-enter", "--config", str(conf), "ops", "--", "env", env=env,
                  cwd=public_dir)
    assert result.returncode == 0, result.stderr
    seen = role_env(result)
    assert (seen["OS_CLIENT_CONFIG_FILE"], seen.get("OS_CLIENT_SECURE_FILE")) == (
        str(creds / "clouds.yaml"), str(creds / "clouds.yaml"))
    write_private(creds / "secure.yaml", yaml_text({"ops": {"auth": {"password": "p"}}}))
    result = tool("openstack-enter", "--config", str(conf), "ops", "--", "env", env=env)
    assert role_env(result).get("OS_CLIENT_SECURE_FILE") == str(creds / "secure.yaml")
    (creds / "secure.yaml").chmod(0o644)  # as every file of the directory: root's alone
    result = tool("openstack-enter", "--config", str(conf), "ops", "--", "env", env=env)
    assert (result.returncode, one_line(result)) == (4, (
        f"openstack-enter: refused: credentials file {creds / 'secure.yaml'} has mode 0644: "
        "group and others must have no access (chmod go= it)"))


# ------------------------------------------------------------------ item 6: the lock directory

def test_a_lock_directory_made_first_by_a_local_user_blocks_no_run(tmp_path):
    """Item 6: anyone can make /run/lock/hltcloud (1777) first; the locks live in root's own
    /run instead. Played in a mount namespace of the test's own, with an empty /run/lock."""
    env = root_env(tmp_path, OS_AUTH_URL=f"http://127.0.0.1:{closed_port()}/v3",
                   OS_USERNAME="admin", OS_PASSWORD="x", OS_PROJECT_NAME="admin")
    del env["HLTCLOUD_LOCK_DIR"]
    script = ('mount -t tmpfs -o mode=1777 hlt-lock /run/lock && '
              f'{" ".join(NOBODY)} mkdir -m 755 /run/lock/hltcloud && '
              'exec "$@"')
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(REPO / "bin" / MANAGE), "--for-real", "enable", "cn01"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    # The run went on to the cloud (where nothing listens here): the lock was no obstacle.
    assert result.returncode == 3, result.stderr
    assert "cannot reach Keystone" in one_line(result)
    info = os.stat("/run/hltcloud")
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o700)


# ------------------------------------------------------------------ row 8: redirects, next links

def hostile(cluster, **settings):
    cluster.sim("PUT", "/sim/hostile", settings)


@pytest.mark.parametrize("service, method, path", [
    ("identity", "POST", "/identity/v3/auth/tokens"),  # the password itself
    ("image", "GET", "/image/v2/images"),  # the token, through keystoneauth1
])
def test_a_redirect_to_another_host_is_never_followed(cluster, listener, service, method,
                                                      path):
    """Row 8: keystoneauth1 follows any redirect and sends the same request, the token or
    the password included, wherever the Location says."""
    cluster.add_image("redirected-img", size_mb=1)
    hostile(cluster, redirect_to=listener.url, redirect_services=[service])
    result = tool("openstack-prefill-cache", "redirected-img", cluster.names[0], env=cluster.env)
    assert listener.seen == []
    assert result.returncode == 3, result.stdout + result.stderr
    line = one_line(result)
    assert line.startswith(f"openstack-prefill-cache: the cloud redirected {method} "
                           f"{cluster.sim_url}{path}")
    assert f" to '{listener.url}{path}" in line
    assert line.endswith("': not followed (a token or password goes only to the endpoint's "
                         "own scheme, host and port)")


def test_novas_redirect_is_reported_not_read_as_an_answer(cluster, listener):
    """Nova's requests (http.client) follow no redirect at all: say so in one line."""
    hostile(cluster, redirect_to=listener.url, redirect_services=["compute"])
    result = tool(MANAGE, "status", env=cluster.env)
    assert result.returncode != 0
    line = one_line(result)
    assert "compute redirected GET /" in line and f" to '{listener.url}/compute/" in line
    assert f": not followed (the token goes only to {cluster.sim_url}/compute/v2.1)" in line
    assert listener.seen == []


def test_a_glance_next_link_to_another_host_is_never_followed(cluster, listener):
    """Row 8: an absolute `next` link names another host; the prefill's image lookup and
    tab completion page through the image list with the same helper."""
    cluster.add_image("paged-img", size_mb=1)
    hostile(cluster, next_link=listener.url)
    result = tool("openstack-prefill-cache", "paged-img", cluster.names[0], env=cluster.env)
    assert listener.seen == []
    assert result.returncode == 3, result.stdout + result.stderr
    line = one_line(result)
    assert line.startswith(f"openstack-prefill-cache: Glance's next link '{listener.url}/v2/images?")
    assert line.endswith(f"' in the image list is not a path of {cluster.sim_url}/image: "
                         "not followed")
    completion = subprocess.run([sys.executable, "-m", "hltcloud.ops.complete", "images"],
                                env={**cluster.env, "PYTHONPATH": str(REPO / "lib")},
                                capture_output=True, text=True, timeout=60)
    assert (completion.returncode, completion.stdout) == (1, "")
    assert listener.seen == []


def test_user_data_another_user_controls_is_refused(cluster, public_dir):
    """Every VM runs its user data as root: a file another user can change is refused."""
    planted = as_nobody_write(public_dir / "user-data", "#!/bin/sh\necho owned\n")
    result = tool(MANAGE, "--user-data", str(planted), "runvms", env=cluster.env)
    assert (result.returncode, one_line(result)) == (2, (
        f"{MANAGE}: runvms: the user data file {planted} is owned by nobody (uid 65534), not by root "
        "(uid 0) (chown it): refusing it"))
    assert cluster.sim("GET", "/sim/servers")["servers"] == []


def test_no_request_of_the_session_leaves_keystone_and_the_endpoints(cluster, listener):
    """The one place under keystoneauth1 and novaclient: whatever asks (a link in a version
    document, a page link of another API), the token goes to no other scheme, host or port."""
    from hltcloud.cloud.session import Cloud, CloudError
    session = Cloud(env=cluster.env).session
    with pytest.raises(CloudError, match=r"^refused to send GET 'http://127\.0\.0\.1:[0-9]+/v2/x': "
                                         r"not the scheme, host and port of Keystone or of an "
                                         r"endpoint$"):
        session.get(listener.url + "/v2/x")
    assert listener.seen == []
