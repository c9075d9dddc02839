"""Site configuration: defaults, file, environment and --config precedence, bad values."""
import pytest

from hltcloud import config


def test_defaults_when_no_file(monkeypatch, tmp_path):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", str(tmp_path / "absent.conf"))
    cfg = config.load()
    assert cfg.path == ""
    assert cfg.services == ("openstack-nova-network", "openstack-nova-metadata-api",
                            "openstack-nova-compute", "libvirtd")
    assert cfg.service_command("start", "libvirtd") == ["service", "libvirtd", "start"]
    assert cfg.base_dir == "/var/lib/nova/instances/_base"
    assert cfg.runvms == {"flavor": "ali1.xlarge", "image": "CentOS6-build13",
                          "key_name": "WorkerNodesSsh",
                          "user_data": "/var/lib/elastiq/wn-user-data.txt", "name": "wn-grid",
                          "network": "auto"}
    assert (cfg.ssh_user, cfg.image_owner) == ("root", "nova:nova")


def test_file_from_env_and_switch(monkeypatch, tmp_path):
    env_file = tmp_path / "env.conf"
    env_file.write_text("[services]\nstart = systemctl start {service}.service\n")
    switch_file = tmp_path / "switch.conf"
    switch_file.write_text("[paths]\ninstances_dir = /srv/nova/\n[runvms]\nname = wn-test\n")
    monkeypatch.setenv(config.ENV_VAR, str(env_file))
    assert config.load().service_command("start", "x") == ["systemctl", "start", "x.service"]
    cfg = config.load(str(switch_file))
    assert cfg.path == str(switch_file)
    assert (cfg.instances_dir, cfg.base_dir) == ("/srv/nova", "/srv/nova/_base")
    assert cfg.runvms["name"] == "wn-test" and cfg.runvms["flavor"] == "ali1.xlarge"


@pytest.mark.parametrize("text, message", [
    ("[ssh]\nconfig = relative/cfg\n", "absolute path"),
    ("[services]\nstart = service start\n", "{service}"),
    ("[services]\nnames = good bad;name\n", "invalid service name"),
    ("[ssh]\nconnect_timeout = soon\n", "whole number"),
    ("not an ini file", "cannot read"),
])
def test_bad_values(tmp_path, text, message):
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        config.load(str(path))


def test_named_file_must_exist(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.conf"))
