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
    assert cfg.credentials_dir == "/etc/hltcloud/credentials"
    assert cfg.nova_conf == "/etc/nova/nova.conf"


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
    other = tmp_path / "enter.conf"
    other.write_text("[enter]\ncredentials_dir = /srv/creds/\n")
    assert config.load(str(other)).credentials_dir == "/srv/creds"


@pytest.mark.parametrize("text, message", [
    ("[ssh]\nconfig = relative/cfg\n", "absolute path"),
    ("[services]\nstart = service start\n", "{service}"),
    ("[services]\nnames = good bad;name\n", "invalid service name"),
    ("[ssh]\nconnect_timeout = soon\n", "whole number"),
    ("not an ini file", "cannot read"),
    # image_owner reaches chown on every node (it was checked by prefill, after the download)
    ("[paths]\nimage_owner = nova nova\n", "USER:GROUP: 'nova nova'"),
    ("[paths]\nimage_owner = nova;reboot\n", "image_owner"),
    ("[paths]\nimage_owner = :nova\n", "image_owner"),
    ("[paths]\nimage_owner = $(id)\n", "image_owner"),
    ("[services]\nstart = service '{service} start\n", "services.start: no closing quotation"),
    ("[ssh]\nconnect_timeout = -5\n", "ssh.connect_timeout: must be at least 1: -5"),
    ("[ssh]\nconnect_timeout = 100000\n", "ssh.connect_timeout: must be at most 300"),
    ("[ssh]\nconnect_timeout = 1e3\n", "whole number"),
    ("[ssh]\nuser = -oProxyCommand=x\n", "ssh.user"),
    ("[paths]\ninstances_dir = var/lib/nova\n", "paths.instances_dir must be an absolute path"),
    ("[paths]\nbase_dir = /var/lib/my base\n", "paths.base_dir must be an absolute path"),
    ("[paths]\nbase_dir = /var/../etc\n", "paths.base_dir"),
    ("[paths]\nglance_images_dir = images\n", "paths.glance_images_dir"),
    ("[runvms]\nuser_data = user-data.txt\n", "runvms.user_data"),
    ("[enter]\ncredentials_dir = creds\n", "enter.credentials_dir must be an absolute path"),
    # nova_conf is read on every node by openstack-prefill-cache --check
    ("[paths]\nnova_conf = nova.conf\n", "paths.nova_conf must be an absolute path"),
    ("[paths]\nnova_conf =\n", "paths.nova_conf must be an absolute path"),
    ("[paths]\nnova_conf = /etc/nova/$(id)\n", "paths.nova_conf"),
    ("[paths]\nnova_conf = /etc/nova/../shadow\n", "paths.nova_conf"),
    ("[enter]\ncredentials_dir =\n", "enter.credentials_dir must be an absolute path"),
])
def test_bad_values(tmp_path, text, message):
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        config.load(str(path))


def test_named_file_must_exist(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.conf"))


def test_not_utf8_and_not_regular_files_are_one_line_errors(tmp_path):
    latin1 = tmp_path / "latin1.conf"
    latin1.write_bytes(b"[runvms]\nname = w\xe9\n")
    for path, message in ((latin1, "not UTF-8"), ("/dev/zero", "not a regular file"),
                          (tmp_path, "not a regular file")):
        with pytest.raises(config.ConfigError, match=message) as err:
            config.load(str(path))
        assert "\n" not in str(err.value)
    big = tmp_path / "big.conf"
    big.write_text("#" * (config.MAX_BYTES + 1))
    with pytest.raises(config.ConfigError, match="larger than"):
        config.load(str(big))
