"""Tab completion (completion/hltcloud.bash) run in bash with COMP_WORDS/COMP_CWORD set, as
bash does on Tab: switches, commands, @files, switch values, host names from the cache that
status refreshes, image names only from a cloud that answers in time."""
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from hltcloud.manage import options as manage_cli
from hltcloud.prefill import cli as prefill_cli
from hltcloud.transfer import cli as wave_cli

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "completion" / "hltcloud.bash"
MANAGE, PREFILL, WAVE, ENTER = ("openstack-hlt-manage", "openstack-prefill-cache",
                                "rsync-wave.py", "openstack-enter")


def complete(*words, env=None):
    """What bash offers for the last word of WORDS."""
    run_env = dict(env or os.environ)
    run_env["PATH"] = f"{REPO / 'bin'}:{run_env.get('PATH', '/usr/bin:/bin')}"
    run_env["CWORD"] = str(len(words) - 1)
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$CWORD; _hltcloud_complete; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    res = subprocess.run(["bash", "-c", script, "bash", str(SCRIPT), *words], env=run_env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]


def switches(parser):
    return {option for action in parser._actions if action.help != "==SUPPRESS=="
            for option in action.option_strings if option.startswith("--")}


@pytest.mark.parametrize("tool, parser", [(MANAGE, manage_cli.parser),
                                          (PREFILL, prefill_cli.build_parser),
                                          (WAVE, wave_cli.build_parser)])
def test_every_switch_of_the_tool_and_no_other(tool, parser):
    assert set(complete(tool, "--")) == switches(parser())


def test_switch_prefix_command_and_values(tmp_path):
    assert set(complete(MANAGE, "--fo")) == {"--for-real", "--force-shutoff", "--format"}
    assert complete(MANAGE, "--for-real", "di") == ["disable"]
    (tmp_path / "site.conf").touch()
    # a switch's value is not the command: the next word still is
    assert complete(MANAGE, "--config", str(tmp_path / "site.conf"), "st") == ["status"]
    assert complete(MANAGE, "--config", str(tmp_path / "si")) == [str(tmp_path / "site.conf")]
    assert complete(MANAGE, "--fanout", "") == []  # a number: nothing to offer
    assert complete(MANAGE, "--vm-timeout", "30", "run") == ["runvms"]


def test_at_files_and_rsync_wave_positions(tmp_path):
    (tmp_path / "list.txt").write_text("cn01\n")
    (tmp_path / "source image.img").write_bytes(b"x")
    assert complete(MANAGE, "disable", f"@{tmp_path}/li") == [f"@{tmp_path}/list.txt"]
    assert complete(WAVE, f"{tmp_path}/so") == [f"{tmp_path}/source image.img"]
    assert complete(WAVE, "--tries", "2", "src", f"@{tmp_path}/l") == []  # DEST: nothing
    assert complete(WAVE, "src", "/dest", f"@{tmp_path}/l") == [f"@{tmp_path}/list.txt"]


def test_enter_completes_the_command_after_dashes():
    assert "python3" in complete(ENTER, "admin", "--", "pytho")


def test_enter_roles_from_its_credentials_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a name run as a command would make "ran"
    marker = tmp_path / "ran"
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    for name in ("admin.openrc", "$(touch ran).openrc", "ops.openrc"):
        (creds / name).write_text("export OS_USERNAME=x\n")
    (creds / "clouds.yaml").write_text("clouds:\n  grid: {auth: {}}\n  '`touch x`': {}\n")
    for path in creds.iterdir():
        path.chmod(0o600)
    (tmp_path / "site.conf").write_text(f"[enter]\ncredentials_dir = {creds}\n")
    env = {**os.environ, "HLTCLOUD_CONFIG": str(tmp_path / "site.conf")}
    assert complete(ENTER, "", env=env) == ["admin", "grid", "ops"]
    assert complete(ENTER, "--config", str(tmp_path / "site.conf"), "o", env=env) == ["ops"]
    assert not marker.exists()
    creds.chmod(0o755)  # a directory openstack-enter would refuse: nothing from it
    assert complete(ENTER, "", env=env) == []


@pytest.mark.parametrize("tool", [MANAGE, PREFILL])
def test_os_cloud_names_from_the_clouds_yaml_the_tools_read(tmp_path, tool):
    marker = tmp_path / "ran"
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(f"clouds:\n  prod: {{}}\n  test: {{}}\n  '$(touch {marker})': {{}}\n")
    clouds.chmod(0o600)
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(clouds)}
    assert complete(tool, "--os-cloud", "", env=env) == ["prod", "test"]
    assert complete(tool, "--for-real", "--os-cloud", "p", env=env) == ["prod"]
    assert not marker.exists()
    clouds.chmod(0o666)  # one the tools refuse: nothing offered from it
    assert complete(tool, "--os-cloud", "", env=env) == []


def test_host_names_from_the_cache_status_refreshes(cluster, tmp_path):
    cache = tmp_path / "cache"
    env = {**cluster.env, "HLTCLOUD_CACHE_DIR": str(cache)}
    assert complete(MANAGE, "disable", "cn", env=env) == []  # no status run yet
    res = subprocess.run([str(REPO / "bin" / MANAGE), "status"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert (cache / "hosts").read_text().split() == cluster.names
    first, second = cluster.names[:2]
    assert complete(MANAGE, "--for-real", "enable", "", env=env) == cluster.names
    assert complete(MANAGE, "disable", f"{first},{second[:-1]}", env=env) == [f"{first},{second}"]
    assert complete(PREFILL, "some-image", second, env=env) == [second]
    assert complete(WAVE, "src", "/dest", first, env=env) == [first]


def test_a_cache_directory_of_another_user_is_not_written(cluster, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    env = {**cluster.env, "HLTCLOUD_CACHE_DIR": str(cache)}
    res = subprocess.run([str(REPO / "bin" / MANAGE), "status"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == ""  # only a convenience: not a word
    assert os.listdir(cache) == []


def test_image_names_from_glance(cluster):
    cluster.add_image("CentOS6-completion", size_mb=1, fmt="raw")
    assert "CentOS6-completion" in complete(PREFILL, "CentOS6-c", env=cluster.env)


def test_a_silent_cloud_gives_no_image_names_and_no_hang(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    env = {**os.environ, "OS_AUTH_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/v3",
           "OS_USERNAME": "admin", "OS_PASSWORD": "x", "OS_PROJECT_NAME": "admin",
           "HLTCLOUD_CONFIG": str(tmp_path / "none.conf")}
    (tmp_path / "none.conf").touch()
    try:
        started = time.monotonic()
        assert complete(PREFILL, "Cen", env=env) == []
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < 10, took  # the completion's own bound (3 s) plus bash and --help


# ------------------------------------------------------------------ names from a hostile cloud

def test_a_hostile_cached_host_name_is_never_run_nor_offered(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "hosts").write_text(f"cn01.internal\ncn$(touch {marker})\ncn`touch {marker}`\n"
                                    "cn\033]0;owned\007\n-oProxyCommand=x\ncn02.internal\n")
    env = {**os.environ, "HLTCLOUD_CACHE_DIR": str(tmp_path)}
    offered = complete(MANAGE, "disable", "cn", env=env)
    assert not marker.exists()  # compgen -W would have run it, as root
    assert offered == ["cn01.internal", "cn02.internal"]
    assert complete(MANAGE, "disable", "cn01.internal,c", env=env) == [
        "cn01.internal,cn01.internal", "cn01.internal,cn02.internal"]
    assert complete(MANAGE, "disable", "", env=env) == ["cn01.internal", "cn02.internal"]


def test_hostile_image_names_from_glance_are_never_run_nor_offered(cluster):
    served = cluster.sim("PUT", "/sim/hostile", {"names": True})  # /sim/reset ends it
    try:
        offered = complete(PREFILL, "img-", env=cluster.env)
        assert not os.path.exists(served["marker"])
        # of the hostile names, the one of letters and digits (other tests' img-* may be there)
        hostile = [name for name in offered if name.startswith("img-cn")]
        assert hostile == [f"img-{'cn' + '9' * 298}"], offered
        assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", name) for name in offered)
    finally:
        cluster.sim("PUT", "/sim/hostile", {"names": False})
