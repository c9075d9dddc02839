"""Credentials as the `openstack` CLI takes them (issue 12, part 2), on the simulated cluster:
clouds.yaml (OS_CLOUD, --os-cloud, the search path, secure.yaml), OS_AUTH_TYPE password,
token and application credentials, ids instead of names, the old OS_ENDPOINT_TYPE; in the
parent and in every --parallel subworker; errors in one line, exit 3, no secret shown."""
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from hltcloud.cloud.session import Cloud

REPO = Path(__file__).resolve().parents[2]
ADMIN_USER_ID = "0a4d2f6e8b1c4e3a9d5f7b2c6e8a0d11"  # the simulator's admin user and project
ADMIN_PROJECT_ID = "6d1c3e9d2f4b4c0f9a0e5d7b8c2a1f00"
OS_VARS = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_USER_DOMAIN_NAME",
           "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME", "OS_IDENTITY_API_VERSION")


def bare_env(cluster, tmp_path, **extra):
    """The cluster's environment without any OS_* credentials, HOME and cwd of our own."""
    env = {k: v for k, v in cluster.env.items() if not k.startswith("OS_")}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


def run(tool, *args, env, cwd=None):
    return subprocess.run([str(REPO / "bin" / tool), *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd, stdin=subprocess.DEVNULL)


def cloud_entry(cluster, **auth_changes):
    env = cluster.env
    auth = {"auth_url": env["OS_AUTH_URL"], "username": env["OS_USERNAME"],
            "password": env["OS_PASSWORD"], "project_name": env["OS_PROJECT_NAME"],
            "user_domain_name": "Default", "project_domain_name": "Default"}
    auth.update(auth_changes)
    return {"auth": {k: v for k, v in auth.items() if v is not None},
            "region_name": "RegionOne", "interface": "public"}


def write_yaml(path, clouds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    path.chmod(0o600)
    return path


def status_ok(result, cluster):
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.names[0] in result.stdout


def app_credential(cluster, name):
    """A new application credential of the admin user, made through Keystone's API."""
    session = Cloud(env=cluster.env).session
    answer = session.post(f"/users/{ADMIN_USER_ID}/application_credentials",
                          endpoint_filter={"service_type": "identity"},
                          json={"application_credential": {"name": name}})
    return answer.json()["application_credential"]


def test_clouds_yaml_named_by_os_cloud_or_switch(cluster, tmp_path):
    path = write_yaml(tmp_path / "conf" / "clouds.yaml", {"hlt": cloud_entry(cluster)})
    env = bare_env(cluster, tmp_path, OS_CLIENT_CONFIG_FILE=str(path), OS_CLOUD="hlt")
    status_ok(run("openstack-hlt-manage", "status", env=env), cluster)
    del env["OS_CLOUD"]
    status_ok(run("openstack-hlt-manage", "--os-cloud", "hlt", "status", env=env), cluster)
    missing = run("openstack-hlt-manage", "--os-cloud", "other", "status", env=env)
    assert missing.returncode == 3
    assert missing.stderr.strip() == f"openstack-hlt-manage: no cloud named 'other' in {path}"


def test_clouds_yaml_search_path_and_secure_yaml(cluster, tmp_path):
    password = cluster.env["OS_PASSWORD"]
    cwd = tmp_path / "work"
    cwd.mkdir()
    home_conf = tmp_path / "home" / ".config" / "openstack"
    # In ~/.config/openstack: the password in secure.yaml only, merged into clouds.yaml.
    write_yaml(home_conf / "clouds.yaml", {"hlt": cloud_entry(cluster, password=None)})
    write_yaml(home_conf / "secure.yaml", {"hlt": {"auth": {"password": password}}})
    env = bare_env(cluster, tmp_path, OS_CLOUD="hlt")
    status_ok(run("openstack-hlt-manage", "status", env=env, cwd=cwd), cluster)
    # ./clouds.yaml is never read (root may stand in another user's directory).
    write_yaml(cwd / "clouds.yaml", {"hlt": cloud_entry(cluster, password="wrong-one")})
    status_ok(run("openstack-hlt-manage", "status", env=env, cwd=cwd), cluster)
    (home_conf / "secure.yaml").unlink()
    refused = run("openstack-hlt-manage", "status", env=env, cwd=cwd)
    assert refused.returncode == 3
    assert refused.stderr.strip() == (
        "openstack-hlt-manage: missing OpenStack credentials in cloud 'hlt' of "
        f"{home_conf / 'clouds.yaml'}: auth.password")
    assert "wrong-one" not in refused.stdout + refused.stderr


def test_application_credential_from_the_environment_and_clouds_yaml(cluster, tmp_path):
    cred = app_credential(cluster, "hlt-ops")
    env = bare_env(cluster, tmp_path, OS_AUTH_URL=cluster.env["OS_AUTH_URL"],
                   OS_AUTH_TYPE="v3applicationcredential",
                   OS_APPLICATION_CREDENTIAL_ID=cred["id"],
                   OS_APPLICATION_CREDENTIAL_SECRET=cred["secret"])
    status_ok(run("openstack-hlt-manage", "status", env=env), cluster)
    by_name = {k: v for k, v in env.items() if k != "OS_APPLICATION_CREDENTIAL_ID"}
    by_name.update(OS_APPLICATION_CREDENTIAL_NAME="hlt-ops", OS_USER_ID=ADMIN_USER_ID)
    status_ok(run("openstack-hlt-manage", "status", env=by_name), cluster)
    path = write_yaml(tmp_path / "clouds.yaml", {"ops": {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": cluster.env["OS_AUTH_URL"], "application_credential_id": cred["id"],
                 "application_credential_secret": cred["secret"]}}})
    yaml_env = bare_env(cluster, tmp_path, OS_CLIENT_CONFIG_FILE=str(path), OS_CLOUD="ops")
    status_ok(run("openstack-hlt-manage", "status", env=yaml_env), cluster)
    wrong = dict(env, OS_APPLICATION_CREDENTIAL_SECRET="not-the-secret")
    refused = run("openstack-hlt-manage", "status", env=wrong)
    assert refused.returncode == 3
    assert refused.stderr.strip() == ("openstack-hlt-manage: authentication failed: check "
                                      "OS_APPLICATION_CREDENTIAL_ID/OS_APPLICATION_CREDENTIAL_SECRET")
    no_secret = {k: v for k, v in env.items() if k != "OS_APPLICATION_CREDENTIAL_SECRET"}
    refused = run("openstack-hlt-manage", "status", env=no_secret)
    assert refused.returncode == 3
    assert refused.stderr.strip() == ("openstack-hlt-manage: missing OpenStack credentials in the "
                                      "environment: OS_APPLICATION_CREDENTIAL_SECRET")


def test_parallel_subworkers_use_the_parents_application_credential(cluster, tmp_path):
    cred = app_credential(cluster, "hlt-parallel")
    path = write_yaml(tmp_path / "clouds.yaml", {"ops": {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": cluster.env["OS_AUTH_URL"], "application_credential_id": cred["id"],
                 "application_credential_secret": cred["secret"]}}})
    env = bare_env(cluster, tmp_path, OS_CLIENT_CONFIG_FILE=str(path))
    cluster.sim("DELETE", "/sim/requests")
    hosts = cluster.names[:2]
    result = run("openstack-hlt-manage", "--os-cloud", "ops", "--parallel", "disable", *hosts,
                 env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in hosts:
        assert any(f"[DRY ] Disabling hypervisor {host}" in line for line in result.stdout.splitlines())
    log = cluster.sim("GET", "/sim/requests")
    log = log["requests"] if isinstance(log, dict) else log
    logins = [r for r in log if r.get("service") == "identity" and r["method"] == "POST"
              and r["path"].rstrip("/").endswith("/auth/tokens")]  # not the credential made above
    assert len(logins) == 1  # the parent's; subworkers use its token
    assert cred["secret"] not in result.stdout + result.stderr


def test_token_ids_and_old_endpoint_type(cluster, tmp_path):
    token = Cloud(env=cluster.env).token
    env = bare_env(cluster, tmp_path, OS_AUTH_URL=cluster.env["OS_AUTH_URL"], OS_AUTH_TYPE="token",
                   OS_TOKEN=token, OS_PROJECT_ID=ADMIN_PROJECT_ID)
    status_ok(run("openstack-hlt-manage", "status", env=env), cluster)
    ids = bare_env(cluster, tmp_path, OS_AUTH_URL=cluster.env["OS_AUTH_URL"],
                   OS_USER_ID=ADMIN_USER_ID, OS_PASSWORD=cluster.env["OS_PASSWORD"],
                   OS_PROJECT_ID=ADMIN_PROJECT_ID, OS_ENDPOINT_TYPE="internalURL",
                   OS_REGION_NAME="RegionOne")
    status_ok(run("openstack-hlt-manage", "status", env=ids), cluster)
    nowhere = dict(ids, OS_REGION_NAME="NoSuchRegion")
    refused = run("openstack-hlt-manage", "status", env=nowhere)
    assert refused.returncode == 3
    assert refused.stderr.strip() == ("openstack-hlt-manage: no internal compute endpoint in region "
                                      "NoSuchRegion in the service catalog (OS_INTERFACE, "
                                      "OS_REGION_NAME)")


@pytest.mark.parametrize("changes, message", [
    ({"OS_AUTH_TYPE": "v2password"}, "auth type 'v2password' of OS_AUTH_TYPE is not supported "
                                     "(password, token, v3applicationcredential)"),
    ({"OS_AUTH_TYPE": "token"}, "missing OpenStack credentials in the environment: OS_TOKEN"),
    ({"OS_USERNAME": ""}, "missing OpenStack credentials in the environment: "
                          "OS_USERNAME or OS_USER_ID"),
    ({"OS_CLOUD": "hlt", "OS_CLIENT_CONFIG_FILE": "/nonexistent/clouds.yaml"},
     "cannot read cloud configuration '/nonexistent/clouds.yaml': No such file or directory"),
    ({"OS_CERT": "/nonexistent/cert.pem"},
     "OS_CERT is not a file: /nonexistent/cert.pem"),
], ids=["v2", "token-without-token", "no-user", "no-clouds-yaml", "no-cert"])
def test_wrong_settings_are_named_in_one_line(cluster, tmp_path, changes, message):
    env = dict(cluster.env, HOME=str(tmp_path), **changes)
    for tool, args in (("openstack-hlt-manage", ["status"]),
                       ("openstack-prefill-cache", ["img", cluster.names[0]])):
        result = run(tool, *args, env=env)
        assert result.returncode == 3, result.stdout + result.stderr
        assert result.stderr.strip() == f"{tool}: {message}"
        assert cluster.env["OS_PASSWORD"] not in result.stdout + result.stderr


def test_clouds_yaml_that_is_not_yaml(cluster, tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text("clouds: [unclosed\n")
    env = bare_env(cluster, tmp_path, OS_CLIENT_CONFIG_FILE=str(path), OS_CLOUD="x")
    result = run("openstack-hlt-manage", "status", env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == f"openstack-hlt-manage: {path} is not valid YAML (line 2)"


def test_prefill_takes_the_os_cloud_switch(cluster, tmp_path):
    cluster.add_image("cloud-img", size_mb=1)
    path = write_yaml(tmp_path / "clouds.yaml", {"hlt": cloud_entry(cluster)})
    env = bare_env(cluster, tmp_path, OS_CLIENT_CONFIG_FILE=str(path))
    result = run("openstack-prefill-cache", "--os-cloud", "hlt", "--dry-run", "cloud-img",
                 cluster.names[0], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Getting image cloud-img" in result.stdout


def test_handoff_never_carries_a_secret(cluster):
    handed = Cloud(env=cluster.env).handoff_env()
    assert cluster.env["OS_PASSWORD"] not in json.dumps(handed)
    assert set(json.loads(handed["HLTCLOUD_AUTH"])) == {"token", "endpoints", "project_id",
                                                        "expires_at", "verify", "cert"}


@pytest.mark.parametrize("form", ["clouds.yaml", "openrc"])
def test_openstack_enter_hands_a_role_to_the_tools(cluster, tmp_path, form):
    """openstack-enter ROLE -- TOOL: the tool authenticates with the role's credentials,
    which come from the root-only directory (a clouds.yaml entry or an openrc file)."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    env = cluster.env
    if form == "clouds.yaml":
        write_yaml(creds / "clouds.yaml", {"ops": cloud_entry(cluster)})
    else:
        names = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
                 "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME")
        (creds / "ops.openrc").write_text("".join(f"export {n}='{env[n]}'\n" for n in names))
        (creds / "ops.openrc").chmod(0o600)
    conf = tmp_path / "site.conf"
    conf.write_text(Path(cluster.config_path).read_text() + f"\n[enter]\ncredentials_dir = {creds}\n")
    result = run("openstack-enter", "ops", "--", str(REPO / "bin" / "openstack-hlt-manage"),
                 "status", env=bare_env(cluster, tmp_path, HLTCLOUD_CONFIG=str(conf)))
    status_ok(result, cluster)
    assert env["OS_PASSWORD"] not in result.stdout + result.stderr
