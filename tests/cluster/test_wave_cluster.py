"""rsync-wave.py on the simulated cluster: real files on real ssh nodes."""
import io
import os
import re
import uuid
from pathlib import Path

import pytest
from helpers import (eventually, interrupt, node_file, processes_mentioning, sha1_of, transfer_lines,
                     twins)

from hltcloud import report
from hltcloud.proc import runner
from hltcloud.transfer import wave

INSTANCES = "/var/lib/nova/instances"


@pytest.fixture
def payload(tmp_path):
    """A random file on the head and a fresh destination name."""
    source = tmp_path / "payload file.img"  # a space: SOURCE is an argument, never a shell word
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return source, f"{INSTANCES}/wave-{uuid.uuid4().hex[:12]}"


def engine(cluster, timeout=5):
    from hltcloud import config
    cfg = config.load(cluster.config_path)
    ssh = runner.Ssh(cfg.ssh_config, cfg.ssh_user, cfg.connect_timeout)
    out = io.StringIO()
    return ssh, report.Reporter(out), out


def test_every_node_gets_the_file_and_sources_double(cluster, payload):
    source, dest = payload
    res = cluster.run_tool("rsync-wave.py", str(source), dest, ",".join(cluster.names))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"transferring {source} to {len(cluster.names)} host(s)..."
    for name in cluster.names:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source)
    transfers = transfer_lines(res.stdout)
    assert sorted(t for _, t, _ in transfers) == sorted(cluster.names)
    holders = set()
    head = transfers[0][0]
    for src, target in ((s, t) for s, t, _ in transfers):
        assert src == head or src in holders, f"{src} sent before it held the file"
        holders.add(target)
    assert any(src != head for src, _, _ in transfers), "no node-to-node transfer"
    assert "file size: 3MB" in lines and any(l.startswith("elapsed time: ") for l in lines)
    assert lines[-1] == f"All {len(cluster.names)} host(s) have the file."
    assert twins(cluster, dest) == []


def test_dry_run_prints_rounds_and_copies_nothing(cluster, payload):
    source, dest = payload
    res = cluster.run_tool("rsync-wave.py", "--dry-run", str(source), dest, *cluster.names)
    assert res.returncode == 0, res.stderr
    rounds = wave.expected_rounds(len(cluster.names))
    assert [l for l in res.stdout.splitlines() if l.startswith("round ")] == \
        [f"round {i}:" for i in range(1, rounds + 1)]
    assert len(re.findall(r"^\[DRY \] \S+ --> \S+$", res.stdout, re.M)) == len(cluster.names)
    assert res.stdout.splitlines()[-1] == "Dry run: nothing was changed."
    assert not any(node_file(cluster, n, dest).exists() for n in cluster.names)
    assert twins(cluster, dest) == []


def test_unreachable_node_fails_alone(cluster, payload):
    source, dest = payload
    down = cluster.names[2]
    cluster.fault(down, "down")
    res = cluster.run_tool("rsync-wave.py", "--timeout", "3", str(source), dest,
                           *cluster.names, timeout=90)
    assert res.returncode == 1, res.stdout + res.stderr
    fails = re.findall(rf"^\[FAIL\] \S+ --> {re.escape(down)}: (.*)$", res.stdout, re.M)
    # ssh could not connect: one more try once the others are done, not --tries (3) in a row
    assert len(fails) == 2, res.stdout
    assert fails[0].endswith("(unreachable: one more try once the others are done)"), fails
    assert fails[1].endswith("(unreachable again: given up)"), fails
    lines = res.stdout.splitlines()
    last_ok = max(i for i, line in enumerate(lines) if line.startswith("[ OK ] "))
    failed_at = [i for i, line in enumerate(lines) if re.match(rf"\[FAIL\] \S+ --> {down}: ", line)]
    assert failed_at[1] > last_ok, res.stdout  # after every other host got the file
    for name in cluster.names:
        assert node_file(cluster, name, dest).exists() == (name != down)
    assert f"Failed on 1 host(s): {down}" in res.stdout  # the words of every tool


def test_broken_seed_is_dropped_and_good_seed_used(cluster, payload):
    """Seeds serve as sources; one that is unreachable stops being used, without costing
    its targets a try."""
    source, dest = payload
    good, bad, *targets = cluster.names
    node_file(cluster, good, dest).write_bytes(source.read_bytes())
    cluster.fault(bad, "down")
    ssh, reporter, out = engine(cluster)
    result = wave.distribute(str(source), dest, targets, ssh, reporter, tries=1, timeout=3,
                             seeds=[good, bad], head_name="head")
    assert result.ok, out.getvalue()
    assert result.broken_sources == [bad]
    assert any(src == good for src, _, ok, _, _ in result.transfers if ok)
    for name in targets:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source)
        assert result.hosts[name].tries == 1 and result.hosts[name].bytes == source.stat().st_size
    assert f"(source {bad} is broken: no longer used)" in out.getvalue()


def test_corrupt_copy_is_refused_and_retried_from_another_source(cluster, payload):
    """A source with wrong content (same size): the target's checksum check refuses it, the
    final name never holds it, and the retry from another source delivers the right file."""
    source, dest = payload
    liar, *targets = cluster.names
    data = bytearray(source.read_bytes())
    data[1000] ^= 0xFF
    node_file(cluster, liar, dest).write_bytes(bytes(data))
    ssh, reporter, out = engine(cluster)
    result = wave.distribute(str(source), dest, targets, ssh, reporter, tries=3, timeout=5,
                             seeds=[liar], head_name="head")
    text = out.getvalue()
    assert result.ok, text
    refused = re.findall(rf"^\[FAIL\] {liar} --> (\S+): verification failed: "
                         r"sha1 checksum mismatch \(try 1 of 3, retrying\)$", text, re.M)
    assert refused, text
    for name in targets:
        assert sha1_of(node_file(cluster, name, dest)) == sha1_of(source)
    assert twins(cluster, dest) == []


def test_sigint_kills_everything_and_leaves_no_final_file(cluster, tmp_path):
    source = tmp_path / "big.img"
    source.write_bytes(os.urandom(24 * 1024 * 1024))
    token = uuid.uuid4().hex[:12]
    dest = f"{INSTANCES}/wave-{token}"
    for name in cluster.names:
        cluster.shape(name, "20mbit")  # ~10 s per copy: the interrupt lands mid-transfer
    started = []  # seen before the signal: a transfer was under way
    run = interrupt([str(wave_tool()), str(source), dest, *cluster.names], cluster.env,
                    when=lambda: twins(cluster, dest), settle=1, timeout=30, poll_step=0.2,
                    before=lambda: started.extend(twins(cluster, dest)))
    out, err = run.out, run.err
    assert started, "no transfer started"
    assert run.status == 130, out + err
    assert "interrupted" in err
    # Remote rsync processes see their connection close, and the cleanup's own session
    # (rm of the temporary twin) ends on the node a moment after its ssh: on a loaded
    # machine that can take more than a second (seen under a full suite run).
    assert eventually(lambda: processes_mentioning(token), 10) == []
    assert not any(node_file(cluster, n, dest).exists() for n in cluster.names)
    assert twins(cluster, dest) == []


def test_a_hostile_nova_user_gets_nothing_of_roots(cluster, hostile_nova, payload):
    """Issue 19: the nova user of every node races DEST (links to a root directory, files of
    its own, root's temporary names stolen: tests/simcluster/hostile_nova.py). A host reported
    done holds the verified file of root's at DEST; any other is reported failed in one line;
    nothing of root's lands anywhere else, and the watched root directories are unchanged."""
    source, dest = payload
    hostile_nova.target(dest)
    res = cluster.run_tool("rsync-wave.py", "--timeout", "5", "--tries", "2", str(source), dest,
                           *cluster.names)
    print(res.stdout, res.stderr)
    done = [target for _, target, _ in transfer_lines(res.stdout)]
    assert hostile_nova.problems(res, dest, done, (0, 0), sha1_of(source)) == []


def wave_tool():
    return Path(__file__).resolve().parents[2] / "bin" / "rsync-wave.py"
