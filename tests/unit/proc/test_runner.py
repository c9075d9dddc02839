"""The subprocess wrappers: argument lists, quoting, timeouts, ssh options."""
import os
import stat
import sys
from pathlib import Path

import pytest

from hltcloud.proc import runner
from hltcloud.validate import BadValue


def test_run_captures_output_and_status():
    res = runner.run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"])
    assert (res.returncode, res.stdout, res.ok) == (3, "out\n", False)
    assert res.reason() == f"{sys.executable.rsplit('/', 1)[-1]} exited with 3: out"


def test_run_timeout_kills():
    res = runner.run(["sleep", "5"], timeout=0.2)
    assert res.timed_out and not res.ok and res.reason() == "sleep timed out"


def test_missing_program():
    res = runner.run(["no-such-program-hltcloud"])
    assert res.returncode == 127 and "command not found" in res.reason()


def test_ssh_argv_keeps_words_whole(tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("")
    ssh = runner.Ssh(str(cfg), user="root", connect_timeout=4)
    argv = ssh.argv("cn01.internal", ["service", "a b;rm -rf /", "start"])
    assert argv == ["ssh", "-F", str(cfg), "-o", "BatchMode=yes", "-o", "ConnectTimeout=4",
                    "-l", "root", "--", "cn01.internal", "service 'a b;rm -rf /' start"]
    assert "StrictHostKeyChecking" not in " ".join(argv)


def test_ssh_refuses_bad_host_and_relative_config(tmp_path):
    with pytest.raises(BadValue, match="invalid host name"):
        runner.Ssh().argv("cn01;reboot", ["true"])
    with pytest.raises(runner.UsageError, match="absolute path: rel/cfg"):
        runner.Ssh("rel/cfg")
    with pytest.raises(runner.UsageError, match="not found"):
        runner.Ssh(str(tmp_path / "missing"))


def test_pdsh_argv_reads_hosts_from_a_private_file():
    with runner.host_file(["cn1", "cn2"]) as path:
        argv = runner.pdsh_exec_argv(path, ["tool", "%h"], fanout=8)
        assert argv == ["pdsh", "-R", "exec", "-f", "8", "-w", f"^{path}", "tool", "%h"]
        assert Path(path).read_text() == "cn1\ncn2\n"
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert not os.path.exists(os.path.dirname(path))
    with pytest.raises(BadValue):
        with runner.host_file(["cn1,cn9"]):
            pass


def test_quoted_is_shell_safe():
    assert runner.quoted(["echo", "it's", "$HOME"]) == "echo 'it'\"'\"'s' '$HOME'"
