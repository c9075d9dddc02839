"""hltcloud.transfer.chain without a cluster: chain planning, command lines, and the node-side
scripts (RECV, FORWARD) run for real with sh on this machine, ssh replaced by a local hop."""
import hashlib
import io
import os
import shlex
import signal
import subprocess
import threading

import pytest

from hltcloud.node import scripts as node_scripts
from hltcloud.transfer import chain as pipeline
from hltcloud import report
from hltcloud.proc import runner
from hltcloud.transfer import common as transfer
from hltcloud.transfer import cli as wave_cli
from hltcloud.transfer.chain.loop import ChainRun
from hltcloud.transfer.chain.rates import HopRates


# ---------------------------------------------------------------- planning

def names(count):
    return [f"cn{i:02d}.internal" for i in range(1, count + 1)]


@pytest.mark.parametrize("count,slots,lengths", [
    (6, 1, [6]), (6, 2, [3, 3]), (7, 3, [3, 2, 2]), (32, 4, [8, 8, 8, 8]), (2, 5, [1, 1]),
    (1, 1, [1])])
def test_chains_are_even_consecutive_runs(count, slots, lengths):
    hosts = names(count)
    chains = pipeline.plan_chains(hosts, slots)
    assert [len(chain) for chain in chains] == lengths
    assert [h for chain in chains for h in chain] == hosts  # order kept, nobody twice


def test_duplicates_are_planned_once():
    assert pipeline.plan_chains(["a", "b", "a", "c"], 1) == [["a", "b", "c"]]


def test_head_slots_below_one_is_refused():
    with pytest.raises(transfer.TransferError, match="head-slots"):
        pipeline.plan_chains(names(3), 0)


def test_dry_run_plan_lines():
    out = io.StringIO()
    pipeline.print_plan(pipeline.plan_chains(names(5), 2), report.Reporter(out), "head")
    assert out.getvalue().splitlines() == [
        "chain 1:",
        "[DRY ] head --> cn01.internal",
        "[DRY ] cn01.internal --> cn02.internal",
        "[DRY ] cn02.internal --> cn03.internal",
        "chain 2:",
        "[DRY ] head --> cn04.internal",
        "[DRY ] cn04.internal --> cn05.internal",
        "5 host(s) in 2 pipelined chain(s)"]


# ---------------------------------------------------------------- command lines

def commands(timeout=30, node_cfg="/etc/hlt/ssh config"):
    ssh = runner.Ssh("", "root", 5)
    return pipeline.ChainCommands(ssh, "/var/lib/nova/instances/img", 1234, ("sha1", "ab" * 20),
                             timeout, node_cfg, run_id="feed")


def test_forward_command_parses_back_into_the_same_words():
    cmds = commands()
    argv = cmds.head_forward("cn01.internal", "cn02.internal", next_last=True)
    assert argv[0] == "ssh" and argv[-3:-1] == ["--", "cn01.internal"]
    remote = shlex.split(argv[-1])
    assert remote[:3] == ["sh", "-c", node_scripts.FORWARD_SCRIPT]
    assert remote[3:6] == ["hltpipe-fwd", "cn01.internal", cmds.private]
    assert remote[6:9] == ["cn02.internal", "30", "0"]  # next host, wait for RECV, start byte
    node_ssh = remote[9:]
    assert node_ssh[0] == "ssh" and node_ssh[-3:-1] == ["--", "cn02.internal"]
    assert node_ssh[1:3] == ["-F", "/etc/hlt/ssh config"]  # one word, spaces and all
    assert "Compression=no" in node_ssh and "BatchMode=yes" in node_ssh
    recv = shlex.split(node_ssh[-1])
    assert recv == ["sh", "-c", node_scripts.RECV_SCRIPT, "hltpipe-recv", "cn02.internal",
                    "/var/lib/nova/instances/img", "/var/lib/nova/instances/.img.pipe-feed",
                    "", "1234", "ab" * 20, "sha1sum", "30"]
    first = shlex.split(cmds.head_recv("cn01.internal", last=False)[-1])
    assert first[6:8] == [cmds.private, "1"]  # feeds the forwarder's fifo


def test_the_private_directory_is_hidden_beside_dest():
    cmds = commands()
    assert cmds.private == "/var/lib/nova/instances/.img.pipe-feed"
    assert cmds.cleanup("cn01.internal")[-3:-1] == ["--", "cn01.internal"]
    assert shlex.split(cmds.cleanup("cn01.internal")[-1])[3:] == ["hltpipe-clean", cmds.private]


@pytest.mark.parametrize("bad", ["cn01;reboot", "-oProxyCommand=x", "", "a b", "$(id)"])
def test_bad_host_names_never_reach_a_command(bad):
    cmds = commands()
    with pytest.raises(ValueError):
        cmds.head_forward("cn01.internal", bad, True)
    with pytest.raises(ValueError):
        cmds.head_recv(bad, True)


@pytest.mark.parametrize("dest", ["relative/path", "/x/../etc/passwd", "/a b", "/x/", "/x;y"])
def test_bad_dest_is_refused_before_anything_runs(tmp_path, dest):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(ValueError):
        pipeline.distribute(str(source), dest, ["cn01.internal"], runner.Ssh(), report.Reporter(io.StringIO()))


def test_missing_source_and_bad_hosts_are_refused(tmp_path):
    rep = report.Reporter(io.StringIO())
    with pytest.raises(transfer.TransferError, match="SOURCE"):
        pipeline.distribute(str(tmp_path / "none"), "/tmp/x", ["cn01"], runner.Ssh(), rep)
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(transfer.TransferError, match="host name"):
        pipeline.distribute(str(source), "/tmp/x", ["cn01", "bad host"], runner.Ssh(), rep)
    with pytest.raises(transfer.TransferError, match="nodes' ssh config"):
        pipeline.distribute(str(source), "/tmp/x", ["cn01"], runner.Ssh(), rep,
                            node_ssh_config="relative")


# ---------------------------------------------------------------- the node scripts, run locally

def private_dir(dest):
    return os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".pipe-test")


def recv_argv(dest, data, feed="", stall=5):
    return ["sh", "-c", node_scripts.RECV_SCRIPT, "recv", "nodeA", dest, private_dir(dest), feed,
            str(len(data)), hashlib.sha1(data).hexdigest(), "sha1sum", str(stall)]


def forward_argv(private, wait, *next_cmd, start=0):
    """FORWARD on "nodeA" towards "nodeB": NEXT_CMD stands for the ssh to nodeB."""
    return ["sh", "-c", node_scripts.FORWARD_SCRIPT, "fwd", "nodeA", private, "nodeB", wait,
            str(start), *next_cmd]


def run_recv(dest, data, sent=None, **kw):
    # Its own session, as under sshd: the scripts end by killing their process group.
    return subprocess.run(recv_argv(dest, data, **kw), input=data if sent is None else sent,
                          capture_output=True, timeout=30, start_new_session=True)


def status_lines(out):
    return [line.split(" ", 2)[1:] for line in out.decode().splitlines()
            if line.startswith("HLTPIPE ") and not line.startswith("HLTPIPE P ")]


def test_recv_verifies_and_renames_into_place(tmp_path):
    data = os.urandom(300_000)
    dest = tmp_path / "img"
    res = run_recv(str(dest), data)
    assert res.returncode == 0, res.stderr
    assert status_lines(res.stdout) == [["OK", f"nodeA {len(data)}"]]
    assert dest.read_bytes() == data
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(tmp_path)) == ["img"]  # no twin left


@pytest.mark.parametrize("damage,reason", [
    (lambda d: d[:-1000], "got 299000 of 300000 bytes"),
    (lambda d: d[:100] + b"X" + d[101:], "checksum mismatch"),
    (lambda d: b"", "got 0 of 300000 bytes")])
def test_recv_refuses_short_or_corrupt_input_and_leaves_nothing(tmp_path, damage, reason):
    data = os.urandom(300_000)
    dest = tmp_path / "img"
    dest.write_bytes(b"old good copy")  # a previous file stays untouched
    res = run_recv(str(dest), data, sent=damage(data))
    assert res.returncode == 1
    assert status_lines(res.stdout) == [["F", f"nodeA {reason}"]]
    assert dest.read_bytes() == b"old good copy"
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_recv_gives_up_on_a_silent_upstream(tmp_path):
    data = os.urandom(1000)
    dest = tmp_path / "img"
    proc = subprocess.Popen(recv_argv(str(dest), data, stall=2), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        proc.wait(20)  # stdin stays open: nothing arrives, and no end of input either
    finally:
        proc.stdin.close()
    out = proc.stdout.read()
    assert proc.returncode != 0
    assert ["F", "nodeA no data for 2 s"] in status_lines(out)
    assert os.listdir(tmp_path) == []


def test_recv_reports_a_missing_directory(tmp_path):
    res = run_recv(str(tmp_path / "nodir" / "img"), b"abc")
    assert res.returncode == 1
    assert status_lines(res.stdout) == [["F", f"nodeA no directory {tmp_path}/nodir"]]


def forward_a_to_b(tmp_path, data):
    """Two "hosts" under TMP_PATH (a/img, b/img) and FORWARD(a) started, whose "ssh" runs
    RECV(b) directly (setsid: in its own session, as sshd would start it)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dest_a, dest_b = str(tmp_path / "a" / "img"), str(tmp_path / "b" / "img")
    forward = subprocess.Popen(
        forward_argv(private_dir(dest_a), "10", "setsid", "-w", *recv_argv(dest_b, data)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    return dest_a, dest_b, forward


def test_forward_feeds_the_next_receiver_while_the_first_keeps_its_copy(tmp_path):
    """A two-host chain on this machine: RECV(a) tees into the fifo, FORWARD(a) runs the
    'ssh' command (here RECV(b) directly) with the fifo on its stdin."""
    data = os.urandom(2_000_000)
    dest_a, dest_b, forward = forward_a_to_b(tmp_path, data)
    first = run_recv(dest_a, data, feed="1")
    forward.wait(30)  # its stdin (the head's lifeline) stays open meanwhile
    forward.stdin.close()
    out, err = forward.stdout.read(), forward.stderr.read()
    assert first.returncode == 0 and forward.returncode == 0, (first.stderr, err)
    assert open(dest_a, "rb").read() == data and open(dest_b, "rb").read() == data
    assert status_lines(out) == [["OK", f"nodeA {len(data)}"]]  # RECV(b) speaks through FORWARD
    assert sorted(os.listdir(tmp_path / "a")) == ["img"]  # fifo and twins gone
    assert sorted(os.listdir(tmp_path / "b")) == ["img"]


def in_dir(path):
    """Pids of the live processes whose working directory is PATH (how CLEANUP finds ours)."""
    try:
        want = os.stat(path)
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        try:
            got = os.stat(f"/proc/{entry}/cwd") if entry.isdigit() else None
        except OSError:
            continue
        if got and (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino):
            found.append(int(entry))
    return found


def group_left(pgid):
    """The processes of session PGID that are not zombies (pid 1 here reaps nobody)."""
    out = subprocess.run(["ps", "-o", "stat=,args=", "-g", str(pgid)], capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if not line.strip().startswith("Z")]


def until(check, seconds=20):
    """CHECK() until it is true or SECONDS passed (generous: the machine may be loaded)."""
    pause = threading.Event()
    for _ in range(int(seconds * 10)):
        if check():
            return True
        pause.wait(0.1)
    return check()


@pytest.mark.parametrize("gone_at_start", [False, True])
def test_forward_dies_with_its_session_and_leaves_nothing(tmp_path, gone_at_start):
    """The head's ssh going away closes FORWARD's stdin: it kills its whole group, also when
    that happens as it starts (its children are forked after the first kill)."""
    private = private_dir(str(tmp_path / "img"))
    forward = subprocess.Popen(
        forward_argv(private, "300", "sleep", "300"),
        stdin=subprocess.DEVNULL if gone_at_start else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    if not gone_at_start:
        assert until(lambda: in_dir(private))  # waiting for its receiver, in its directory
        forward.stdin.close()  # what sshd does when the connection closes
    forward.wait(20)
    # Nothing of its process group is left (the `sleep 300` included) once the watcher's
    # last round is over.
    assert until(lambda: not group_left(forward.pid)), group_left(forward.pid)
    assert os.listdir(tmp_path) == []


def test_a_new_receiver_takes_over_and_the_forwarder_there_reads_the_file_to_its_end(tmp_path):
    """A take-over (the upstream was slow): the old receiver got 1 MiB of 3 MB from a sender that
    stays connected; the new one starts from byte 600,000 (sent again: dropped), appends the
    rest and verifies; the forwarder that follows the old receiver passes the whole file on;
    the old receiver ends silently once the new one is done."""
    data = os.urandom(3_000_000)
    dest_a, dest_b, forward = forward_a_to_b(tmp_path, data)
    old = subprocess.Popen(recv_argv(dest_a, data, feed="1"), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        old.stdin.write(data[:1 << 20])
        old.stdin.flush()
        got = os.path.join(private_dir(dest_a), "data")
        assert until(lambda: os.path.exists(got) and os.path.getsize(got) == 1 << 20)
        # The forwarder follows the file (its mark: fwd.in) before the take-over, as in a
        # chain, where it starts with the receiver (a loaded machine may start it late).
        assert until(lambda: os.path.exists(os.path.join(private_dir(dest_a), "fwd.in")))
        new = subprocess.run(recv_argv(dest_a, data, feed="1") + ["600000"],
                             input=data[600_000:], capture_output=True, timeout=30,
                             start_new_session=True)
        assert new.returncode == 0, new.stderr
        assert status_lines(new.stdout) == [["OK", f"nodeA {len(data)}"]]
        assert old.wait(10) == 0  # its sender is still there: it ended by itself
        assert status_lines(old.stdout.read()) == []  # not a word once taken over
        assert forward.wait(30) == 0, (forward.stdout.read(), forward.stderr.read())
    finally:
        for proc in (old, forward):
            proc.stdin.close()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert status_lines(forward.stdout.read()) == [["OK", f"nodeA {len(data)}"]]
    assert open(dest_a, "rb").read() == data and open(dest_b, "rb").read() == data
    assert sorted(os.listdir(tmp_path / "a")) == ["img"]
    assert sorted(os.listdir(tmp_path / "b")) == ["img"]


def test_a_take_over_without_a_receiver_there_fails_and_leaves_nothing(tmp_path):
    dest = str(tmp_path / "img")
    res = run_recv(dest, b"x" * 1000, sent=b"x" * 1000)  # a fresh one: works
    assert res.returncode == 0
    res = subprocess.run(recv_argv(str(tmp_path / "img2"), b"x" * 1000) + ["0"], input=b"x",
                         capture_output=True, timeout=30, start_new_session=True)
    assert res.returncode == 1
    assert status_lines(res.stdout) == [["F", f"nodeA no receiver to take over in "
                                               f"{private_dir(str(tmp_path / 'img2'))}"]]
    assert sorted(os.listdir(tmp_path)) == ["img"]


def test_wave_cli_knows_pipeline():
    args = wave_cli.build_parser().parse_args(["--pipeline", "src", "/d", "cn01"])
    assert args.pipeline


def test_recv_ends_when_its_file_is_removed(tmp_path):
    """A receiver waiting for its forwarder and for data ends, whole group, when its
    temporary file goes away."""
    data = os.urandom(1000)
    dest = tmp_path / "img"
    proc = subprocess.Popen(recv_argv(str(dest), data, feed="1", stall=60),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        tmp = tmp_path / ".img.pipe-test" / "data"
        assert until(tmp.exists)
        tmp.unlink()
        proc.wait(20)
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert until(lambda: not group_left(proc.pid)), group_left(proc.pid)
    assert not dest.exists()


def start_pair(private, dest, data, next_cmd=("sleep", "300"), wait="60"):
    """RECV (fed by a pipe, for a forwarder) and FORWARD (its "ssh" to the next host: NEXT_CMD)
    on this machine, each in its own session as sshd starts them."""
    return [
        subprocess.Popen(recv_argv(str(dest), data, feed="1", stall=60), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True),
        subprocess.Popen(forward_argv(private, wait, *next_cmd), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)]


def end_sessions(procs):
    """What sshd does when the head's ssh goes away: stdin and stdout close."""
    for proc in procs:
        proc.stdin.close()
        proc.stdout.close()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cleanup(private):
    return subprocess.run(["sh", "-c", node_scripts.CLEANUP_SCRIPT, "clean", private],
                          capture_output=True, text=True, timeout=60, start_new_session=True)


def cleanup_ends_every_session(private, procs):
    """CLEANUP on PRIVATE succeeds, no process is left in it, and every one of PROCS (the
    sessions, as sshd started them) has ended with its whole group."""
    res = cleanup(private)
    assert res.returncode == 0, res.stderr
    assert in_dir(private) == []
    for proc in procs:
        assert proc.wait(10) is not None
        assert group_left(proc.pid) == []


def test_cleanup_ends_every_process_in_the_private_directory(tmp_path):
    """What the head runs on every host after Ctrl-C: the receiver (and its dd and heartbeat),
    the forwarder following its file (tail, the watcher of its stdin, and the ssh towards
    the next host, here a sleep) are all gone when it returns, and so is the directory."""
    data = os.urandom(1000)
    dest = tmp_path / "img"
    private = private_dir(str(dest))
    procs = start_pair(private, dest, data)
    try:
        assert until(lambda: os.path.exists(os.path.join(private, "fwd.in")))  # tail follows
        assert until(lambda: len(in_dir(private)) >= 6), in_dir(private)
        cleanup_ends_every_session(private, procs)
    finally:
        end_sessions(procs)
    assert os.listdir(tmp_path) == []


def test_cleanup_after_a_take_over_leaves_nothing(tmp_path):
    """Ctrl-C while a new receiver has taken over (the old one waiting for it, the forwarder
    following the file): every process ends and the directory goes, with the take-over's
    files (its mark, the dd's pid)."""
    data = os.urandom(3 << 20)
    dest = tmp_path / "img"
    private = private_dir(str(dest))
    procs = start_pair(private, dest, data)
    try:
        procs[0].stdin.write(data[:1 << 20])
        procs[0].stdin.flush()
        got = os.path.join(private, "data")
        assert until(lambda: os.path.exists(got) and os.path.getsize(got) == 1 << 20)
        new = subprocess.Popen(recv_argv(str(dest), data, feed="1", stall=60) + [str(1 << 20)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
        procs.append(new)
        new.stdin.write(data[1 << 20:2 << 20])  # still receiving when Ctrl-C comes
        new.stdin.flush()
        assert until(lambda: os.path.exists(os.path.join(private, "took"))
                     and os.path.getsize(got) == 2 << 20)
        cleanup_ends_every_session(private, procs)
    finally:
        end_sessions(procs)
    assert os.listdir(tmp_path) == []


def test_cleanup_ends_a_forwarder_still_waiting_for_its_receiver(tmp_path):
    """No receiver yet, nothing recorded: the forwarder waiting in the directory goes too."""
    private = private_dir(str(tmp_path / "img"))
    forward = subprocess.Popen(forward_argv(private, "300", "sleep", "300"),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert until(lambda: in_dir(private))
        res = cleanup(private)
        assert res.returncode == 0, res.stderr
        assert forward.wait(10) is not None and group_left(forward.pid) == []
    finally:
        end_sessions([forward])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("delay", [0, 0.02, 0.05, 0.1, 0.2, 0.4])
def test_cleanup_at_any_moment_then_the_sessions_end_leaves_nothing(tmp_path, delay):
    """CLEANUP may run while the scripts start (before or while they enter the directory),
    then their sessions end (the head killed its ssh): nothing of them, and no directory, is
    left."""
    data = os.urandom(1000)
    dest = tmp_path / "img"
    private = private_dir(str(dest))
    procs = start_pair(private, dest, data)
    threading.Event().wait(delay)
    res = cleanup(private)
    end_sessions(procs)
    assert res.returncode == 0, res.stderr
    for proc in procs:
        assert until(lambda: not group_left(proc.pid)), group_left(proc.pid)
    assert until(lambda: os.listdir(tmp_path) == []), os.listdir(tmp_path)
    assert not dest.exists()


def test_signals_again_and_again_do_not_cut_the_cleanup_short(tmp_path):
    """The watchers send TERM to a group every half second until its script is gone; a burst
    of them while the scripts clean up must still leave no file and no directory."""
    data = os.urandom(1000)
    dest = tmp_path / "img"
    private = private_dir(str(dest))
    procs = start_pair(private, dest, data)
    try:
        assert until(lambda: os.path.exists(os.path.join(private, "fwd.in")))
        for _ in range(100):
            for proc in procs:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
            threading.Event().wait(0.005)
        for proc in procs:
            assert until(lambda: not group_left(proc.pid)), group_left(proc.pid)
    finally:
        end_sessions(procs)
    assert until(lambda: os.listdir(tmp_path) == []), os.listdir(tmp_path)


def test_a_planned_forwarder_starts_its_ssh_before_its_receiver_is_there(tmp_path):
    """The ssh towards the next host starts at once (handshakes do not add up along a chain);
    with no receiver here within the wait it gets an empty input (a receiver there fails on it)."""
    marker, got = tmp_path / "started", tmp_path / "got"
    next_cmd = ["sh", "-c", 'touch "$1"; cat > "$2"', "next", str(marker), str(got)]
    forward = subprocess.Popen(forward_argv(private_dir(str(tmp_path / "img")), "3", *next_cmd),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert until(marker.exists)  # no receiver yet, the "ssh" runs
        forward.wait(30)  # ends with its "ssh" (here: cat, happy with nothing)
        assert "no receiver running on nodeA" in forward.stderr.read().decode()
    finally:
        end_sessions([forward])
    assert got.read_bytes() == b""
    assert sorted(os.listdir(tmp_path)) == ["got", "started"]


def test_a_late_forwarder_without_a_receiver_says_gone_and_sends_nothing(tmp_path):
    """A route-around forwarder (wait 0) on a host whose receiver has ended: "HLTPIPE GONE
    NEXT" on stdout (the head feeds NEXT then), its ssh never runs, nothing left."""
    marker = tmp_path / "ran"
    res = subprocess.run(forward_argv(private_dir(str(tmp_path / "img")), "0",
                                      "touch", str(marker)), stdin=subprocess.PIPE, capture_output=True,
                         text=True, timeout=30, start_new_session=True)
    assert res.returncode == 1
    assert res.stdout.splitlines() == ["HLTPIPE GONE nodeB"]
    assert "no receiver running on nodeA" in res.stderr
    assert not marker.exists() and os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the engine's checks

class _SteadyHeartbeats(pipeline.ChainCommands):
    """The commands of a run whose one receiver is a local process that says, twenty times a
    second, that cn01 holds 5 bytes (the news never stops; the count never moves)."""
    def head_recv(self, host, last, private=None, take_over=None):
        return ["sh", "-c", f"while :; do echo HLTPIPE P {host} 5; sleep 0.05; done"]


def test_checks_run_while_news_keeps_coming():
    """A stall is found even when heartbeats arrive more often than the loop's 0.1 s tick
    (16 hosts' heartbeats did that): the checks run after every batch of news."""
    cmds = _SteadyHeartbeats(runner.Ssh("", "root", 5), "/var/lib/nova/instances/img", 1234,
                             ("sha1", "ab" * 20), 1, None, run_id="feed")
    run = ChainRun(cmds, [["cn01.internal"]], "/dev/null", report.Reporter(io.StringIO()),
                   "head", 10)
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    try:
        worker.join(30)  # stalled after 1 s; generous for a loaded machine
        assert not worker.is_alive(), "the checks never ran"
    finally:
        run.pool.abort()
        worker.join(10)
    assert (run.state.hosts["cn01.internal"].state, run.state.hosts["cn01.internal"].reason) == \
        ("fail", "no data for 1 s")


# ---------------------------------------------------------------- slow nodes

def test_a_host_far_below_its_upstream_is_slow_after_two_checks():
    rates = HopRates()
    verdicts = []
    for second in range(6):
        rates.note("up", second, second * 2_500_000)
        rates.note("slow", second, second * 250_000)
        lead = second * 2_250_000
        verdicts.append(rates.slow("slow", second, lead, rates.rate("up", second)))
    # a rate one second after the first byte (second 1), then two strikes
    assert verdicts == [False, False, False, True, True, True]


def test_a_host_whose_sessions_start_late_is_not_slow():
    rates = HopRates()
    got = {2.5: 50_000, 3.0: 400_000}  # nothing for 2.5 s (handshakes), then TCP's slow start
    for tick in range(16):
        now = tick / 2
        count = got.get(now, 0 if now < 2.5 else 400_000 + (now - 3.0) * 2_400_000)
        rates.note("up", now, now * 2_500_000)
        rates.note("next", now, count)
        assert not rates.slow("next", now, now * 2_500_000 - count, rates.rate("up", now)), now


def test_keeping_up_or_a_short_dip_is_not_slow():
    rates = HopRates()
    got = 0
    for second in range(10):
        got += 100_000 if second == 4 else 2_400_000  # one bad second (CPU noise)
        rates.note("up", second, second * 2_500_000)
        rates.note("next", second, got)
        assert not rates.slow("next", second, second * 2_500_000 - got, rates.rate("up", second))
    rates.reset("next", 10)
    assert rates.rate("next", 10.5) is None  # a new upstream: measured afresh


def test_a_late_heartbeat_of_a_replaced_session_is_no_slowness():
    rates = HopRates()
    rates.reset("next", 0)
    for second, count in ((0.5, 700_000), (1, 100_000), (2, 2_600_000), (3, 5_100_000)):
        rates.note("next", second, count)  # 700 kB: the old session's, queued before it ended
        assert not rates.slow("next", second, 3_000_000, 2_500_000)
    assert rates.rate("next", 3) == pytest.approx(2_500_000)


def test_a_new_receiver_is_measured_from_its_new_senders_first_byte():
    """A take-over: the new receiver's first heartbeat says what the file holds already (here
    3 MB); while the new sender's first bytes are still on their way (its ssh handshake, the
    old dd stopping) it has no rate, and is not slow."""
    rates = HopRates()
    rates.reset("next", 10)
    for tick in range(8):
        now = 10 + tick / 2
        rates.note("up", now, 5_000_000 + tick * 1_250_000)
        rates.note("next", now, 3_000_000)  # nothing new yet
        assert rates.rate("next", now) is None, now
        assert not rates.slow("next", now, 2_000_000 + tick * 1_250_000, 2_500_000), now
    rates.note("next", 14.5, 4_000_000)
    rates.note("next", 15.5, 6_500_000)
    assert rates.rate("next", 15.5) == pytest.approx(2_500_000)
