"""Pipelined chain broadcast: every host receives the file once and passes it on while it
receives, so N hosts take about the time of one copy (issue 7), instead of the wave's
log2(N+1) rounds.

    distribute(source, dest, hosts, ssh, reporter, *, head_slots=1, timeout=60,
               checksum=None, head_name=None, node_ssh_config=None,
               progress_interval=None) -> transfer.TransferResult

The package, one job a module:
- plan: the hosts cut into chains (pure), and the dry run's lines;
- commands: the command lines of a run (the node scripts are hltcloud/node/*.sh);
- events: what goes into the state machine (a session's line, its end, a tick) and what comes
  out (start a forwarder, feed a host from the head, end a session, a host done, CLEANUP);
- state: ChainState, the state machine (pure): every decision, every change of the chains
  (reroute: its slow-node part);
- rates: HopRates, the slow-node rule (pure);
- sessions: SessionPool, the ssh processes, their output turned into events on one queue;
- loop: ChainRun between the two (the clock, progress, Ctrl-C, CLEANUP) and distribute().

Plan: the hosts are cut into HEAD_SLOTS chains of consecutive hosts; the head streams the
file into the first host of each chain. With the same link speed everywhere one chain is the
fastest (every uplink carries the file once at full speed); more chains share the head's.

Sessions:
- head -> first host of a chain: RECV, with the file on its stdin; started first and alone,
  so that its handshake has the head's cores (its first byte comes about as soon as a plain
  copy's);
- head -> every host H but the last of its chain: FORWARD, which runs
  `tail -f TMP | ssh NEXT RECV` on H; the ssh to NEXT carries NEXT's RECV. A chain's
  forwarders all start at once (the handshakes do not add up along it) as soon as its first
  host has spoken (or 0.3 s after the start).
RECV on a host: dd writes what arrives into TMP from the first byte on and stops at the
file's size; a "P host bytes" heartbeat at once, then twice a second (the shell reads dd's
count from /proc: no process started for it); then size and checksum (read from TMP) are
checked, and TMP is renamed into place once the forwarder there has opened it. The forwarder
polls TMP every 10 ms (tail cannot wait on a descriptor): a hop adds about that much, and
the link behind it does not idle between two polls. TMP lives in a private directory of the
run (root only, hidden beside DEST), the working directory of every process of the run on
that host. Status lines travel back to the head on the stdout of the session that carries
the RECV.

Slow nodes (rates.py, reroute.py): the forwarders follow the file, so a host receives at the
pace of its own upstream hop. A host far slower than its upstream is taken out of the chain,
while it keeps its own session and finishes at its own pace. The host after it takes over: a
new RECV there, fed by the slow host's upstream (a new FORWARD there, reading the upstream's
file from the byte the head last heard of), stops the old RECV's dd, keeps the bytes of its
file and appends the rest; the hosts behind keep their sessions, which follow that file (one
new ssh session, not two per host behind). Where no take-over is possible (no byte written
yet, or that host took over once already) the hosts behind start again from byte 0, in a new
private directory (cheap: behind a slow node they got only what it could pass on at its
pace). The slow host, still fed by its old upstream, shares that host's uplink with the
hosts behind (half of it when the verdict was wrong: a host starved of CPU for a second under
load looks slow); so once the chain's last host holds what it holds it moves there: a
take-over of its own receiver, fed by that last host, whose uplink is idle (one new session).
An upstream whose copy is complete (or whose receiver has just ended: its forwarder
says "GONE", having sent nothing) is never read from: the head feeds the next host then.
After a run with such restarts the head runs CLEANUP on every host and directory of the run,
so that what the replaced sessions were still ending leaves nothing behind.

Faults: a host that fails or stalls breaks the chain after it; the head kills the sessions of
hosts without progress for TIMEOUT seconds (or a few seconds after their upstream failed),
and the hosts that did not get the file are completed by the wave (broadcast.py) with the
hosts that did as seeds. Remote work dies with its ssh: FORWARD watches its stdin (the head's
pipe), RECV stops at end of input, a failed heartbeat write, or TIMEOUT s without data. Their
watchers kill the whole process group again and again until the script is gone: a single
kill can miss a child forked just after it. Ctrl-C kills every session's process group, runs
CLEANUP on every host (every process in the run's private directories ends, the directories
go) and re-raises.
"""
from hltcloud.transfer.chain.commands import ChainCommands
from hltcloud.transfer.chain.loop import distribute
from hltcloud.transfer.chain.plan import plan_chains, print_plan

__all__ = ["ChainCommands", "distribute", "plan_chains", "print_plan"]
