"""The process table from /proc, and the polling helper, on real processes of this machine."""
import os
import shutil
import subprocess
import sys

from hltcloud import polling
from hltcloud.proc import procfs


def test_our_own_process_as_the_kernel_sees_it():
    me = procfs.process(os.getpid())
    assert (me.pid, me.ppid, me.uid) == (os.getpid(), os.getppid(), os.geteuid())
    assert me.state in "RS"
    assert me.argv[0] == sys.executable.encode() or me.argv[0].endswith(b"python3")


def test_a_name_with_parentheses_and_spaces_does_not_shift_the_fields(tmp_path):
    """comm is "(name)" and may itself hold ") ": the fields start after the last ")"."""
    odd = tmp_path / "a) b ("
    shutil.copy("/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "30"])
    try:
        # until it has exec'd: right after the fork it is a copy of us
        found = polling.until(lambda: (p := procfs.process(child.pid)) and p.argv[:1] == (
            str(odd).encode(),) and p, 10)
        assert found.ppid == os.getpid() and found.state in "RS"
        assert found.argv == (str(odd).encode(), b"30")
        assert child.pid in procfs.children(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_a_zombie_is_not_running_and_a_reaped_one_is_gone():
    child = subprocess.Popen(["true"])
    assert polling.until(lambda: not procfs.running(child.pid), 10)
    assert procfs.process(child.pid).state == "Z"  # ended, not yet waited for
    child.wait()
    assert procfs.process(child.pid) is None
    assert child.pid not in procfs.children(os.getpid())


def test_until_returns_the_first_true_value_or_the_last_false_one():
    looks = []

    def third_time():
        looks.append(1)
        return "yes" if len(looks) == 3 else ""

    assert polling.until(third_time, 10, first=0.001) == "yes"
    assert len(looks) == 3
    looks.clear()
    assert polling.until(lambda: looks.append(1), 0.05, first=0.001, most=0.002) is None
    assert len(looks) >= 2  # it looked again before giving up, and did give up
