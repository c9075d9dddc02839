"""Credentials as the openstack CLI takes them, against the real Keystone (issue 12, part 2):
a clouds.yaml entry, and an application credential created in Keystone, in the parent and in
the --parallel subworkers (whose requests the real Nova middleware must accept)."""
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MANAGE = REPO / "bin" / "openstack-hlt-manage"


def run(env, *args):
    return subprocess.run([str(MANAGE), *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def without_os_vars(rc, tmp_path, **extra):
    env = {k: v for k, v in rc.env.items() if not k.startswith("OS_")}
    env["HOME"] = str(tmp_path)
    env.update(extra)
    return env


def clouds_yaml(tmp_path, clouds):
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    path.chmod(0o600)
    return path


def test_clouds_yaml_entry_with_a_password(rcloud, tmp_path):
    env = rcloud.env
    auth = {"auth_url": env["OS_AUTH_URL"], "username": env["OS_USERNAME"],
            "password": env["OS_PASSWORD"], "project_name": env["OS_PROJECT_NAME"],
            "user_domain_name": env.get("OS_USER_DOMAIN_NAME", "Default"),
            "project_domain_name": env.get("OS_PROJECT_DOMAIN_NAME", "Default")}
    path = clouds_yaml(tmp_path, {"hlt": {"auth": auth, "region_name": env.get("OS_REGION_NAME")}})
    result = run(without_os_vars(rcloud, tmp_path, OS_CLIENT_CONFIG_FILE=str(path)),
                 "--os-cloud", "hlt", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(name in result.stdout for name in rcloud.names)


def test_application_credential_created_in_keystone(rcloud, tmp_path):
    session = rcloud.cloud().session
    user_id = session.get_user_id()
    answer = session.post(f"/users/{user_id}/application_credentials",
                          endpoint_filter={"service_type": "identity"},
                          json={"application_credential": {"name": f"hlt-{tmp_path.name}"}})
    cred = answer.json()["application_credential"]
    try:
        env = without_os_vars(rcloud, tmp_path, OS_AUTH_URL=rcloud.env["OS_AUTH_URL"],
                              OS_AUTH_TYPE="v3applicationcredential",
                              OS_APPLICATION_CREDENTIAL_ID=cred["id"],
                              OS_APPLICATION_CREDENTIAL_SECRET=cred["secret"])
        result = run(env, "status")
        assert result.returncode == 0, result.stdout + result.stderr
        assert all(name in result.stdout for name in rcloud.names)
        path = clouds_yaml(tmp_path, {"ops": {
            "auth_type": "v3applicationcredential",
            "auth": {"auth_url": rcloud.env["OS_AUTH_URL"], "application_credential_id": cred["id"],
                     "application_credential_secret": cred["secret"]}}})
        parallel = run(without_os_vars(rcloud, tmp_path, OS_CLIENT_CONFIG_FILE=str(path),
                                       OS_CLOUD="ops"),
                       "--parallel", "disable", *rcloud.names[:2])
        assert parallel.returncode == 0, parallel.stdout + parallel.stderr
        for host in rcloud.names[:2]:
            assert f"[DRY ] Disabling hypervisor {host}" in parallel.stdout
        assert cred["secret"] not in parallel.stdout + parallel.stderr
        wrong = dict(env, OS_APPLICATION_CREDENTIAL_SECRET="not-the-secret")
        refused = run(wrong, "status")
        assert refused.returncode == 3
        assert refused.stderr.strip() == (
            "openstack-hlt-manage: authentication failed: check "
            "OS_APPLICATION_CREDENTIAL_ID/OS_APPLICATION_CREDENTIAL_SECRET")
    finally:
        session.delete(f"/users/{user_id}/application_credentials/{cred['id']}",
                       endpoint_filter={"service_type": "identity"})
