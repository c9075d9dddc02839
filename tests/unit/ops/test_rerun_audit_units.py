"""Units of issue 13 parts 1 and 2: the list switches and the re-run command (rerun.py),
the record's pieces (audit.py), the [log] keys."""
import io
import os
import socket
import stat

import pytest

from hltcloud.ops import audit
from hltcloud import config
from hltcloud.manage import options as manage_cli
from hltcloud import report
from hltcloud.ops import rerun
from hltcloud.transfer import cli as wave_cli
from hltcloud.errors import UsageError
from hltcloud.ops.outcomes import Outcome


def test_log_keys_default_and_validated(tmp_path):
    path = tmp_path / "site.conf"
    path.write_text("[ssh]\nuser = root\n")
    cfg = config.load(str(path))
    assert (cfg.syslog, cfg.syslog_socket) == (True, "/dev/log")
    path.write_text("[log]\nsyslog = no\nsocket = /run/x.sock\n")
    cfg = config.load(str(path))
    assert (cfg.syslog, cfg.syslog_socket) == (False, "/run/x.sock")
    for text, message in (("[log]\nsyslog = perhaps\n", "log.syslog must be yes or no: 'perhaps'"),
                          ("[log]\nsocket = dev/log\n", "log.socket must be an absolute path"),
                          ("[log]\nsocket =\n", "log.socket must be an absolute path")):
        path.write_text(text)
        with pytest.raises(config.ConfigError, match=message):
            config.load(str(path))


def test_list_switches_are_checked_before_anything(tmp_path):
    def parse(*argv):
        return manage_cli.parse(list(argv))
    with pytest.raises(UsageError, match="for enable, disable and reconcile, not status"):
        parse("--failed-hosts", str(tmp_path / "f"), "status")
    with pytest.raises(UsageError, match="no such directory"):
        parse("--failed-hosts", str(tmp_path / "nodir" / "f"), "enable", "cn01")
    with pytest.raises(UsageError, match="is a directory"):
        parse("--ok-hosts", str(tmp_path), "enable", "cn01")
    with pytest.raises(UsageError, match="the same file"):
        parse("--ok-hosts", str(tmp_path / "f"), "--failed-hosts", str(tmp_path / "f"),
              "enable", "cn01")
    opts = parse("--for-real", "--no-syslog", "--failed-hosts", str(tmp_path / "f"), "enable", "cn01")
    assert manage_cli.forwarded_switches(opts) == ["--for-real", "--vm-timeout", "300", "--no-syslog"]


def test_the_host_words_are_found_even_when_an_option_value_looks_the_same():
    parser = wave_cli.build_parser()
    argv = ["--config", "cn01", "src", "/d", "cn01", "cn02", "--tries", "2"]
    args = parser.parse_args(argv)
    span = rerun.words_span(parser, argv, args)
    lists = rerun.HostLists("rsync-wave.py", argv, span, args)
    assert lists.command("@/t/f").endswith(
        "rsync-wave.py --config cn01 src /d @/t/f --tries 2")


def test_write_list_is_private_and_replaces(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("old\n")
    path.chmod(0o644)
    rerun.write_list(str(path), ["cn01", "cn02"], "hosts that failed: x")
    assert path.read_text() == "# hosts that failed: x\ncn01\ncn02\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts"]


def test_records_are_one_line_and_names_checked(monkeypatch):
    assert audit.one_line("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    monkeypatch.setenv("SUDO_USER", "eve\nforged record")
    assert audit.who().endswith(", sudo from ?)")


def test_status_lines_reach_the_record_without_colours(tmp_path):
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1)
    (tmp_path / "site.conf").write_text(f"[log]\nsyslog = yes\nsocket = {path}\n")
    cfg = config.load(str(tmp_path / "site.conf"))
    try:
        record = audit.start("tool", ["--x", "a b"], cfg)
        out = io.StringIO()
        rep = report.Reporter(out, record=record)
        rep.colors = True
        rep.ok("did cn01")
        rep.info("progress, not recorded")
        rep.show_fail("cn02 broke")
        audit.note_outcomes([Outcome("cn01"), Outcome("cn02").failed("cn02 broke")])
    finally:
        audit.finish(1)
    got = [sock.recv(4096).decode().rstrip("\x00") for _ in range(4)]
    sock.close()
    assert [g.split(": ", 1)[1] for g in got] == [
        "start: " + audit.who() + ": tool --x 'a b'", "[ OK ] did cn01", "[FAIL] cn02 broke",
        "end: exit status 1 (some host failed); failed: cn02; ok: cn01"]
    assert got[0].startswith("<14>tool[") and got[2].startswith("<11>tool[")


def _lists(argv, span, **kwargs):
    import dataclasses as dc
    args = dc.make_dataclass("A", ["failed_path", "ok_path"])(None, None)
    return rerun.HostLists("openstack-hlt-manage", argv, span, args, **kwargs)


def _ran(lists, hosts_ok, hosts_bad):
    from hltcloud.ops.outcomes import Outcome
    out = io.StringIO()
    lists.finish(report.Reporter(out), [Outcome(h) for h in hosts_ok]
                 + [Outcome(h).failed(f"{h}: broke") for h in hosts_bad])
    return out.getvalue()


def test_rerun_lists_go_to_the_users_state_directory_which_keeps_the_last_runs(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    argv = ["--for-real", "disable", "cn[01-03]"]
    for _ in range(rerun.KEEP + 3):
        said = _ran(_lists(argv, (2, 3)), ["cn01"], ["cn02", "cn03"])
    directory = tmp_path / "state" / "hltcloud"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    kept = sorted(directory.iterdir())
    assert len(kept) == rerun.KEEP  # not 41 folders after an afternoon
    assert said.strip().endswith(f"--for-real disable @{kept[-1]}")
    assert kept[-1].read_text().splitlines()[1:] == ["cn02", "cn03"]


def test_a_dry_run_or_check_keeps_no_list_and_checks_line_is_the_repair(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    said = _ran(_lists(["disable", "cn[01-03]"], (1, 2), save=False), [], ["cn02", "cn03"])
    assert said.strip().endswith("Re-run on the 2 failed host(s): openstack-hlt-manage "
                                 "disable 'cn[02-03]'")
    argv = ["--check", "--json", "img", "cn[01-03]"]
    check = rerun.HostLists("openstack-prefill-cache", argv, (3, 4),
                            _lists([], (0, 0)), save=False, drop=("--check", "--json"))
    assert _ran(check, [], ["cn01"]).strip().endswith(": openstack-prefill-cache img cn01")
    assert not (tmp_path / "state").exists()


def test_a_state_directory_others_can_write_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "hltcloud").mkdir(mode=0o777)
    os.chmod(tmp_path / "hltcloud", 0o777)
    said = _ran(_lists(["disable", "cn01"], (1, 2)), [], ["cn01"])
    assert "[FAIL] cannot keep the failed hosts' list: the re-run lists' directory" in said
    assert "is writable by others" in said and list((tmp_path / "hltcloud").iterdir()) == []
