"""The wave engine: copy one file from this (head) node to many hosts, in waves.

The head sends to one host; when a transfer completes its target becomes a source too, so
the number of sources roughly doubles each round and the head is never the bottleneck.

Reusable engine (the pipelined broadcast of issue 7 falls back to it):

    distribute(source, dest, hosts, ssh, reporter, *, tries=3, head_slots=1, timeout=60,
               seeds=(), verify=True, checksum=None, head_name=None)
        -> transfer.TransferResult

- SOURCE: a local file on the head; DEST: the absolute path it gets on every host.
- HOSTS: target names (validated); SEEDS: hosts that already hold the verified file at DEST
  and serve as extra sources from the start (a seed listed in HOSTS counts as delivered).
- SSH: a runner.Ssh (config file, user, connect timeout); nodes use the same ssh config path
  and key when they send to each other (see the man page).
- Each source does one outgoing transfer at a time (the head HEAD_SLOTS). A failed transfer is
  retried from another source, up to TRIES per host; a node source that fails because it is
  itself broken (unreachable, or its copy is gone) stops being used and that attempt does not
  count against the target. TIMEOUT bounds a stall: ssh ConnectTimeout and keepalives, rsync
  --timeout, and a process deadline of TIMEOUT + size at 1 MB/s.
- A host never holds a partial or unverified file under DEST: rsync writes it into DEST's
  hidden private twin (a directory only root can enter: its server starts in it, so it never
  resolves a name nova could plant), the host checks its size and checksum there (VERIFY;
  CHECKSUM is an (algorithm, hexdigest) pair, computed from SOURCE when None) and only then
  renames it into place (never through a link nor into a directory).
- Ctrl-C (KeyboardInterrupt) kills every child process group, removes the temporary files it
  can reach, and re-raises.
- Prints "transferring ...", one "[ OK ] a --> b (rate)" / "[FAIL] a --> b: reason" line per
  transfer, "file size:" and "elapsed time:"; print_summary() prints the closing summary.

The command line of rsync-wave.py is wave_cli.py; broadcast.py chooses between the engines.
"""
import queue
import re
import shlex
import socket
import threading
import time

from hltcloud.proc import runner
from hltcloud.node.scripts import CHECK_SCRIPT, CLEANUP_SCRIPT, RSYNC_INTO_SCRIPT
from hltcloud.printable import printable
from hltcloud.transfer.common import (CHECKSUM_TOOLS, DEFAULT_TIMEOUT, DEFAULT_TRIES, HostResult, TransferResult,
                       check_bounds, check_request, hidden_twin, prepare_copy, say_closing,
                       say_delivered)
from hltcloud.validate import check_name

HEAD = "@head"  # the head as a source (never a valid host name)
MIN_RATE = 1_000_000  # bytes/s: below this a transfer counts as stalled (process deadline)
HASH_RATE = 50_000_000  # bytes/s assumed for checksumming on a node (verify deadline)


# ---------------------------------------------------------------- planning (pure)

def plan_rounds(hosts, head_slots=1, seeds=()):
    """The wave if every transfer succeeds and takes the same time.

    Returns a list of rounds, each a list of (source, target) pairs; the head is HEAD.
    In each round every holder (the head with HEAD_SLOTS, every seed and every host served
    so far) sends to one new target, so N hosts need about ceil(log2(N+1)) rounds.
    """
    check_bounds(head_slots=head_slots)
    seeds = list(dict.fromkeys(seeds))
    pending = [h for h in dict.fromkeys(hosts) if h not in seeds]
    holders = list(seeds)
    rounds = []
    while pending:
        senders = [HEAD] * head_slots + holders
        pairs = list(zip(senders, pending))
        pending = pending[len(pairs):]
        holders += [target for _, target in pairs]
        rounds.append(pairs)
    return rounds


def expected_rounds(n_hosts, head_slots=1):
    """Rounds of the wave for N hosts from the head alone (closed form of plan_rounds)."""
    rounds, holders, done = 0, 0, 0
    while done < n_hosts:
        done += min(n_hosts - done, head_slots + holders)
        holders = done
        rounds += 1
    return rounds


# ---------------------------------------------------------------- commands

class WaveCommands:
    """The command lines of one wave: rsync from the head, rsync run on a node, verify."""

    def __init__(self, ssh, source, dest, size, checksum, timeout, verify=True):
        self.ssh = ssh
        self.source = source
        self.dest = dest
        self.size = size
        self.algorithm, self.digest = checksum
        self.timeout = timeout
        self.verify = verify
        self.tmp = hidden_twin(dest, "wave")  # a private directory on each target

    def ssh_options(self):
        """Our ssh options with the stall bound of --timeout."""
        return self.ssh.options(stall=self.timeout)

    def rsh(self):
        return self.ssh.rsh(stall=self.timeout)

    def ssh_argv(self, host, remote_script):
        return runner.ssh_argv(self.ssh_options(), host, remote_script)

    def transfer_deadline(self):
        return self.timeout + self.size / MIN_RATE

    def rsync_options(self):
        """The stall bound; the rsync server on the target started inside the private
        directory (made unless there, checked), writing ./data there (RSYNC_INTO_SCRIPT)."""
        into = shlex.join(["sh", "-c", RSYNC_INTO_SCRIPT, "hltwave-rsync", self.tmp, "rsync"])
        return ["--timeout", str(self.timeout), "--rsync-path", into]

    def from_head(self, target):
        check_name(target, "host name")
        return runner.rsync_argv(self.source, f"{target}:{self.tmp}", rsh=self.rsh(),
                                 extra=self.rsync_options())

    def from_node(self, source_host, target):
        """ssh SOURCE rsync -e 'ssh ...' DEST TARGET:TMP, watched: the remote rsync is killed
        as soon as our ssh goes away (its stdin closes), so Ctrl-C leaves nothing running."""
        check_name(target, "host name")
        rsync = shlex.join(runner.rsync_argv(self.dest, f"{target}:{self.tmp}", rsh=self.rsh(),
                                             extra=self.rsync_options()))
        return self.ssh_argv(source_host, runner.watched_command(rsync))

    def check_and_rename(self, target):
        """On TARGET: the copy in the private directory checked (regular, root's, size,
        checksum), then renamed into place (CHECK_SCRIPT)."""
        tool = CHECKSUM_TOOLS[self.algorithm] if self.verify else ""
        script = shlex.join(["sh", "-c", CHECK_SCRIPT, "hltwave-check", self.tmp, self.dest,
                             str(self.size), self.digest if self.verify else "", tool,
                             self.algorithm])
        return self.ssh_argv(target, script)

    def verify_deadline(self):
        return self.timeout + self.size / HASH_RATE

    def holds_file(self, host):
        """On HOST: is the final file there with the right size (a source still usable)?"""
        script = f"[ \"$(stat -c %s -- {shlex.quote(self.dest)})\" = {self.size} ]"
        return self.ssh_argv(host, shlex.join(["sh", "-c", script]))

    def remove_tmp(self, host):
        """On HOST: the private directory gone, with what still works in it (CLEANUP_SCRIPT)."""
        return self.ssh_argv(host, shlex.join(["sh", "-c", CLEANUP_SCRIPT, "hltwave-clean",
                                               self.tmp]))


# ssh's own words when it cannot reach a host at all (no sshd, host down, no route, no name);
# it names the address it tried, which the ssh config may have put for the host's name
_UNREACHABLE = re.compile(r"^ssh: (?:connect to host \S+ port \d+: (?:Connection refused|"
                          r"Connection timed out|No route to host|Network is unreachable)|"
                          r"Could not resolve hostname )", re.M)


def unreachable(outcome):
    """True when an ssh of OUTCOME (ours, or the source node's) could not connect: another
    try at once would wait out the same timeout again."""
    return bool(_UNREACHABLE.search(outcome.stderr))


def refusal(outcome):
    """The target's "refusing: ..." line in OUTCOME's output (say, its private directory was
    not one), if any."""
    return next((line.strip() for line in outcome.stderr.splitlines()
                 if line.startswith("refusing: ")), "")


# ---------------------------------------------------------------- engine

class _Wave:
    def __init__(self, cmds, hosts, reporter, tries, head_slots, seeds, head_name, groups):
        self.cmds = cmds
        self.reporter = reporter
        self.tries = tries
        self.head_name = head_name
        self.groups = groups
        self.results = {host: HostResult(host) for host in hosts}
        self.pending = [h for h in hosts if h not in seeds]
        for host in hosts:
            if host in seeds:
                self.results[host] = HostResult(host, ok=True, source="seed")
        self.head_free = head_slots
        self.idle = list(dict.fromkeys(seeds))  # node sources waiting for work
        self.busy = set()
        self.broken = []
        self.tried_from = {h: set() for h in hosts}
        self.in_flight = {}  # target -> source
        self.unreached = set()  # targets ssh could not connect to (once is enough to know)
        self.deferred = []  # of those, the ones waiting for their one more try, at the end
        self.events = queue.Queue()
        self.threads = []
        self.transfers = []

    # -- choosing who sends to whom
    def _sources_left(self):
        return {HEAD} | set(self.idle) | self.busy

    def _pick_source(self, target):
        tried = self.tried_from[target]
        candidates = list(self.idle) + ([HEAD] if self.head_free else [])
        fresh = [s for s in candidates if s not in tried]
        if fresh:
            return fresh[0]
        if candidates and not (self._sources_left() - tried):
            return candidates[0]  # every source was tried: try again rather than give up
        return None

    def _start_ready(self):
        for target in list(self.pending):
            if not self.idle and not self.head_free:
                return
            source = self._pick_source(target)
            if source is None:
                continue
            if source == HEAD:
                self.head_free -= 1
            else:
                self.idle.remove(source)
                self.busy.add(source)
            self.pending.remove(target)
            self.in_flight[target] = source
            thread = threading.Thread(target=self._transfer, args=(source, target), daemon=True)
            self.threads.append(thread)
            thread.start()

    # -- one transfer (worker thread)
    def _transfer(self, source, target):
        cmds = self.cmds
        started = time.monotonic()
        if source == HEAD:
            outcome = self.groups.run(cmds.from_head(target), cmds.transfer_deadline())
        else:
            outcome = self.groups.run(cmds.from_node(source, target), cmds.transfer_deadline(),
                                        keep_stdin_open=True)
        copied = time.monotonic() - started
        reason, source_broken, target_unreachable = "", False, False
        if outcome.ok:
            check = self.groups.run(cmds.check_and_rename(target), cmds.verify_deadline())
            if not check.ok:
                reason = f"verification failed: {check.cause('verification')}"
                if check.returncode not in (4, 5) and not check.aborted:
                    # The check did not run to its end (it removes a bad copy itself).
                    self.groups.run(cmds.remove_tmp(target), min(cmds.timeout, 10))
        else:
            # rsync removes its own temporary file when a transfer breaks off; the private
            # directory goes too. A refusal on the target says more than rsync's line after it.
            reason = refusal(outcome) or outcome.cause("transfer")
            if not outcome.aborted:
                self.groups.run(cmds.remove_tmp(target), min(cmds.timeout, 10))
            if source != HEAD and not outcome.aborted:
                probe = self.groups.run(cmds.holds_file(source), cmds.timeout)
                source_broken = not probe.ok and not probe.aborted
            # a source that answers its probe was reached: the ssh that failed was the target's
            target_unreachable = unreachable(outcome) and not source_broken
        self.events.put((source, target, reason, source_broken, target_unreachable, copied,
                         time.monotonic() - started))

    # -- bookkeeping (main thread)
    def _finish(self, source, target, reason, source_broken, target_unreachable, copied,
                seconds):
        del self.in_flight[target]
        name = self.head_name if source == HEAD else source
        result = self.results[target]
        self.transfers.append((name, target, not reason, reason, seconds))
        if source == HEAD:
            self.head_free += 1
        else:
            self.busy.discard(source)
            if source_broken:
                self.broken.append(source)
            else:
                self.idle.append(source)
        if not reason:
            result.ok, result.source, result.reason = True, name, ""
            result.bytes, result.elapsed = self.cmds.size, seconds
            result.tries += 1
            self.idle.append(target)
            say_delivered(self.reporter, name, target, self.cmds.size, copied)
            return
        self.tried_from[target].add(source)
        result.reason = reason
        if source_broken:
            reason += f" (source {name} is broken: no longer used)"
        else:
            result.tries += 1
        if target_unreachable and target not in self.unreached:
            self.unreached.add(target)
            if result.tries < self.tries:
                self.deferred.append(target)
                reason += " (unreachable: one more try once the others are done)"
        elif target_unreachable:
            reason += " (unreachable again: given up)"
        elif result.tries < self.tries:
            self.pending.append(target)
            reason += f" (try {result.tries} of {self.tries}, retrying)" if not source_broken else ""
        # REASON quotes the node (ssh, rsync, the check): printable before our colours go on
        self.reporter.write_line(f"{self.reporter.paint('fail', '[FAIL]')} {name} --> {target}: "
                                 f"{printable(reason)}")

    def run(self):
        self._start_ready()
        while self.in_flight or self._last_tries():
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            self._finish(*event)
            self._start_ready()
        for target in self.pending:  # no source could be found for these any more
            self.results[target].reason = self.results[target].reason or "no source left"

    def _last_tries(self):
        """Once nothing is in flight: the one more try of the targets ssh could not reach
        (True if one started)."""
        if self.in_flight or not self.deferred:
            return False
        self.pending += self.deferred
        self.deferred = []
        self._start_ready()
        return bool(self.in_flight)

    def abort(self):
        """Ctrl-C: kill everything, then remove the temporary files of transfers in flight."""
        self.groups.abort()
        for thread in self.threads:
            thread.join(5)
        runner.run_all([self.cmds.remove_tmp(target) for target in self.in_flight], 5, grace=2.0)


def distribute(source, dest, hosts, ssh, reporter, *, tries=DEFAULT_TRIES, head_slots=1,
               timeout=DEFAULT_TIMEOUT, seeds=(), verify=True, checksum=None, head_name=None):
    """Copy SOURCE (a local file) to DEST on every host of HOSTS, in waves; see the module
    docstring. Returns a TransferResult; raises TransferError on bad input (nothing copied) and
    KeyboardInterrupt after cleaning up when interrupted."""
    hosts, seeds = check_request(dest, hosts, seeds)
    check_bounds(tries=tries, head_slots=head_slots, timeout=timeout)
    size, checksum = prepare_copy(source, checksum)
    cmds = WaveCommands(ssh, source, dest, size, checksum, int(timeout), verify=verify)
    head_name = head_name or socket.gethostname()
    started = time.monotonic()
    reporter.info(f"transferring {source} to {len(hosts)} host(s)...")
    wave = _Wave(cmds, hosts, reporter, tries, head_slots, seeds, head_name, runner.ProcessGroups())
    try:
        wave.run()
    except BaseException:
        wave.abort()
        raise
    elapsed = time.monotonic() - started
    say_closing(reporter, size, elapsed)
    return TransferResult(wave.results, size, elapsed, wave.transfers, wave.broken, checksum)


def print_plan(rounds, reporter, head_name):
    """--dry-run: who sends to whom, round by round."""
    for number, pairs in enumerate(rounds, 1):
        reporter.info(f"round {number}:")
        for source, target in pairs:
            reporter.dry(f"{head_name if source == HEAD else source} --> {target}")
    hosts = sum(len(pairs) for pairs in rounds)
    reporter.info(f"{hosts} host(s) in {len(rounds)} round(s)")


