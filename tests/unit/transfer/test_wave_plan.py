"""rsync-wave.py, the pure parts: round planning, DEST checks, the remote command lines."""
import math
import shlex

import pytest

from hltcloud.node import scripts as node_scripts
from hltcloud.proc import runner
from hltcloud.transfer import common as transfer
from hltcloud.transfer import wave
from hltcloud.validate import BadValue


def hosts(n):
    return [f"cn{i:02d}.internal" for i in range(1, n + 1)]


@pytest.mark.parametrize("n", list(range(1, 70)))
def test_rounds_double_the_sources(n):
    rounds = wave.plan_rounds(hosts(n))
    assert len(rounds) == math.ceil(math.log2(n + 1)) == wave.expected_rounds(n)
    holders = {wave.HEAD}
    served = []
    for pairs in rounds:
        senders = [source for source, _ in pairs]
        assert len(senders) == len(set(senders)), "a source sends twice in one round"
        assert set(senders) <= holders, "a host sends before it holds the file"
        holders |= {target for _, target in pairs}
        served += [target for _, target in pairs]
    assert sorted(served) == hosts(n)


def test_head_slots_and_seeds_are_sources():
    rounds = wave.plan_rounds(hosts(6), head_slots=3)
    assert rounds[0] == [(wave.HEAD, "cn01.internal"), (wave.HEAD, "cn02.internal"),
                         (wave.HEAD, "cn03.internal")]
    assert len(rounds) == 2 == wave.expected_rounds(6, head_slots=3)
    seeded = wave.plan_rounds(hosts(4), seeds=["cn01.internal", "cn09.internal"])
    assert seeded[0] == [(wave.HEAD, "cn02.internal"), ("cn01.internal", "cn03.internal"),
                         ("cn09.internal", "cn04.internal")]
    assert wave.plan_rounds([]) == []
    with pytest.raises(transfer.TransferError, match="head-slots"):
        wave.plan_rounds(hosts(2), head_slots=0)


@pytest.mark.parametrize("dest", ["relative/file", "/tmp/a b", "/tmp/x;rm", "/tmp/dir/",
                                  "/tmp/../etc/passwd", "/tmp//x", "/tmp/$(id)", "/"])
def test_bad_dest_refused(dest):
    with pytest.raises(transfer.TransferError, match="DEST"):
        transfer.check_dest(dest)


def test_good_dest():
    assert transfer.check_dest("/var/lib/nova/instances/hlt-glance-cache-1a2b") == \
        "/var/lib/nova/instances/hlt-glance-cache-1a2b"


def make_cmds(tmp_path, timeout=20):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("")
    ssh = runner.Ssh(str(cfg), user="root", connect_timeout=5)
    return wave.WaveCommands(ssh, "/srv/src file", "/var/lib/nova/instances/img", 1000,
                         ("sha1", "ab" * 20), timeout), str(cfg)


def test_node_to_node_runs_rsync_on_the_source(tmp_path):
    cmds, cfg = make_cmds(tmp_path)
    argv = cmds.from_node("cn01.internal", "cn02.internal")
    assert argv[:2] == ["ssh", "-F"] and argv[-3:-1] == ["--", "cn01.internal"]
    assert "StrictHostKeyChecking=no" not in " ".join(argv)
    # The remote string is "sh -c SCRIPT"; the script starts rsync from the final file.
    remote = shlex.split(argv[-1])
    assert remote[:2] == ["sh", "-c"]
    script = remote[2]
    rsync_words = shlex.split(script.split(" </dev/null")[0].removeprefix("exec 3<&0; "))
    assert rsync_words[0] == "rsync"
    assert rsync_words[-2:] == ["/var/lib/nova/instances/img", f"cn02.internal:{cmds.tmp}"]
    rsh = shlex.split(rsync_words[rsync_words.index("-e") + 1])
    assert rsh[:3] == ["ssh", "-F", cfg] and "ConnectTimeout=5" in rsh
    assert cmds.tmp.startswith("/var/lib/nova/instances/.img.wave-")


def test_head_transfer_and_check_commands(tmp_path):
    cmds, _ = make_cmds(tmp_path, timeout=3)
    argv = cmds.from_head("cn03.internal")
    assert argv[0] == "rsync" and argv[-2:] == ["/srv/src file", f"cn03.internal:{cmds.tmp}"]
    assert argv[argv.index("--timeout") + 1] == "3"
    assert "ConnectTimeout=3" in argv[argv.index("-e") + 1]  # bounded by --timeout
    check = shlex.split(cmds.check_and_rename("cn03.internal")[-1])
    assert check == ["sh", "-c", node_scripts.CHECK_SCRIPT, "hltwave-check", cmds.tmp,
                     "/var/lib/nova/instances/img", "1000", "ab" * 20, "sha1sum", "sha1"]


def test_bad_host_names_never_reach_a_command(tmp_path):
    cmds, _ = make_cmds(tmp_path)
    for bad in ("cn01;reboot", "-oProxyCommand=x", "cn 01", ""):
        with pytest.raises(BadValue):
            cmds.from_head(bad)
        with pytest.raises(BadValue):
            cmds.from_node("cn01.internal", bad)
        with pytest.raises(BadValue):
            cmds.from_node(bad, "cn01.internal")


def test_rate_and_size_formats():
    assert transfer.format_rate(12_500_000, 1.0) == "12.5 MB/s"
    assert transfer.format_size(1_145_000_000) == "1145MB"


@pytest.mark.parametrize("stderr, unreachable", [
    ("ssh: connect to host 198.18.0.77 port 22: Connection timed out\r\n"
     "rsync: connection unexpectedly closed (0 bytes received so far) [sender]\n", True),
    ("ssh: connect to host cn03.internal port 22: Connection refused\r\n", True),
    ("ssh: connect to host cn03.internal port 2222: No route to host\r\n", True),
    ("ssh: connect to host 10.0.0.3 port 22: Network is unreachable\r\n", True),
    ("ssh: Could not resolve hostname cn03.internal: Name or service not known\r\n", True),
    ("rsync: write failed on \"/x\": No space left on device (28)\n", False),
    ("Permission denied (publickey).\r\n", False),
    ("Host key verification failed.\r\n", False),
    ("refusing: ssh: connect to host cn03.internal port 22: Connection refused", False),
])
def test_ssh_failing_to_connect_is_told_from_other_failures(stderr, unreachable):
    from hltcloud.proc.runner import Result
    assert wave.unreachable(Result(["rsync"], 255, "", stderr)) == unreachable
