"""rsync-wave.py: copy one file from this (head) node to many hosts, in waves.

The head sends to one host; when a transfer completes its target becomes a source too, so
the number of sources roughly doubles each round and the head is never the bottleneck.

Reusable engine (the pipelined broadcast of issue 7 falls back to it):

    distribute(source, dest, hosts, ssh, reporter, *, tries=3, head_slots=1, timeout=60,
               seeds=(), verify=True, checksum=None, head_name=None) -> WaveResult

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
- A host never holds a partial or unverified file under DEST: rsync writes DEST's hidden
  temporary twin, the host checks its size and checksum (VERIFY; CHECKSUM is an (algorithm,
  hexdigest) pair, computed from SOURCE when None) and only then renames it into place.
- Ctrl-C (KeyboardInterrupt) kills every child process group, removes the temporary files it
  can reach, and re-raises.
- Prints "transferring ...", one "[ ok ] a --> b (rate)" / "[FAIL] a --> b: reason" line per
  transfer, "file size:" and "elapsed time:"; print_summary() prints the closing summary.

The command line (main) is only parsing and printing around distribute().
"""
import hashlib
import os
import queue
import re
import secrets
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import config, hostlist, inputs, runner
from .errors import FAILED, OK, run_main
from .report import Reporter
from .validate import BadValue, check_name

HEAD = "@head"  # the head as a source (never a valid host name)
DEFAULT_TRIES = 3
DEFAULT_TIMEOUT = 60
# Command line bounds (also openstack-prefill-cache's): far above any real use, low enough
# that no value exhausts memory (--head-slots builds lists that long) or hands rsync an
# absurd --timeout.
TRIES = inputs.whole_number(1, 100)
SECONDS = inputs.whole_number(1, 86_400, " of seconds")
HEAD_SLOTS = inputs.whole_number(1, 1024)
MIN_RATE = 1_000_000  # bytes/s: below this a transfer counts as stalled (process deadline)
HASH_RATE = 50_000_000  # bytes/s assumed for checksumming on a node (verify deadline)
CHECKSUM_TOOLS = {"sha1": "sha1sum", "md5": "md5sum", "sha256": "sha256sum", "sha512": "sha512sum"}

# DEST is put into remote shell strings (quoted) and rsync arguments: keep it boring.
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]*\Z")

USAGE = ("rsync-wave.py [--ssh-config FILE] [--tries N] [--head-slots K] [--timeout S] "
         "[--pipeline] [--dry-run] [--no-colors] [--line-output] [--config FILE]\n"
         "                    SOURCE DEST HOSTS...")


class WaveError(ValueError):
    """Bad input for the wave: reported in one line, exit 2, nothing copied."""


def check_dest(dest):
    """DEST must be an absolute file path made of letters, digits and . _ + - / only."""
    if not isinstance(dest, str) or not _SAFE_PATH.match(dest) or dest.endswith("/"):
        raise WaveError(f"DEST must be an absolute file path (letters, digits, . _ + - /): {dest!r}")
    if any(part in ("", ".", "..") for part in dest.split("/")[1:]):
        raise WaveError(f"DEST must be a plain absolute file path: {dest!r}")
    return dest


def file_checksum(path, algorithm="sha1", chunk=1 << 20):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- planning (pure)

def plan_rounds(hosts, head_slots=1, seeds=()):
    """The wave if every transfer succeeds and takes the same time.

    Returns a list of rounds, each a list of (source, target) pairs; the head is HEAD.
    In each round every holder (the head with HEAD_SLOTS, every seed and every host served
    so far) sends to one new target, so N hosts need about ceil(log2(N+1)) rounds.
    """
    if head_slots < 1:
        raise WaveError(f"--head-slots must be at least 1: {head_slots}")
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


# ---------------------------------------------------------------- results

@dataclass
class HostResult:
    host: str
    ok: bool = False
    source: str = ""  # who delivered the file ("seed" when it already held it)
    reason: str = ""  # why the last attempt failed ("" when ok)
    bytes: int = 0  # bytes delivered (0 for a seed)
    elapsed: float = 0.0  # seconds of the successful transfer, verification included
    tries: int = 0  # transfers towards this host that counted against --tries


@dataclass
class WaveResult:
    hosts: dict  # name -> HostResult, in the order given
    size: int
    elapsed: float
    transfers: list = field(default_factory=list)  # (source, target, ok, reason, seconds)
    broken_sources: list = field(default_factory=list)

    @property
    def ok(self):
        return all(result.ok for result in self.hosts.values())

    def failed(self):
        return [name for name, result in self.hosts.items() if not result.ok]

    def delivered(self):
        return [name for name, result in self.hosts.items() if result.ok]


# ---------------------------------------------------------------- child processes

@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    aborted: bool = False

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out and not self.aborted


class Children:
    """Every process the engine starts, each in its own process group, so that a stall or
    Ctrl-C can kill a whole ssh/rsync tree; after abort() nothing new starts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs = set()
        self.aborting = False

    def run(self, argv, timeout, keep_stdin_open=False):
        """Run ARGV to completion or TIMEOUT. KEEP_STDIN_OPEN gives it a pipe that stays open
        until it ends (remote watchdogs kill their work when that pipe closes)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            with self._lock:
                if self.aborting:
                    return Outcome(-1, "", "interrupted", aborted=True)
                try:
                    proc = subprocess.Popen(
                        argv, stdout=out, stderr=err, start_new_session=True,
                        stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL)
                except FileNotFoundError:
                    return Outcome(127, "", f"{argv[0]}: command not found")
                self._procs.add(proc)
            timed_out = False
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
            finally:
                if proc.stdin:
                    proc.stdin.close()
                with self._lock:
                    self._procs.discard(proc)
            out.seek(0)
            err.seek(0)
            return Outcome(proc.returncode, out.read().decode(errors="replace"),
                           err.read().decode(errors="replace"), timed_out=timed_out,
                           aborted=self.aborting)

    def abort(self):
        """Stop starting processes and kill every running one (whole process groups)."""
        with self._lock:
            self.aborting = True
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)


def _kill_group(proc, grace=2.0):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _reason(outcome, what):
    """One line saying why a transfer step failed."""
    if outcome.aborted:
        return "interrupted"
    if outcome.timed_out:
        return f"{what} timed out"
    lines = [line.strip() for line in (outcome.stderr + "\n" + outcome.stdout).splitlines()
             if line.strip()]
    # rsync's first "rsync:" line names the cause; its "rsync error:" line only the code.
    for line in lines:
        if line.startswith(("ssh:", "rsync:")) and not line.startswith("rsync error:"):
            return line
    if lines:
        return lines[0]
    return f"{what} exited with {outcome.returncode}"


# ---------------------------------------------------------------- commands

def watched(script):
    """A remote command running SCRIPT, killed with everything it started (its whole
    process group) as soon as our ssh goes away: its stdin closes. Used for long remote work
    so that Ctrl-C or a timeout on the head leaves nothing running on the node."""
    inner = shlex.join(["sh", "-c", script])
    # sh gives background jobs /dev/null as stdin: keep ours on fd 3 for the watchdog.
    return shlex.join(["sh", "-c", (
        f"exec 3<&0; {inner} </dev/null 3<&- & p=$!; "
        f"(cat <&3 >/dev/null 2>&1; kill -TERM 0) >/dev/null 2>&1 & w=$!; "
        f"exec 3<&-; wait $p; r=$?; kill $w 2>/dev/null; exit $r")])


# Verify and rename on the target, as root, in DEST's directory (which the nova user may
# write): the temporary file is first moved by one rename into a private directory that only
# root can enter (mktemp -d, checked after `cd -P`), so what is checked is what gets renamed
# into place, and a planted link moves itself, never its target. Exit 4 or 5: the copy was
# bad (and is gone); 3: it could not be checked. sh (dash) runs it.
# $1 temporary file, $2 DEST, $3 size, $4 digest ("" = size only), $5 checksum tool, $6 its name
CHECK_SCRIPT = r"""
tmp=$1 dest=$2 size=$3 sum=$4 tool=$5 algo=$6 priv= inside=
clean() { if [ -n "$inside" ]; then rm -f -- ./data; cd -P .. && rmdir -- "$priv"; fi; }
trap clean EXIT
trap "exit 3" HUP INT TERM
cd -P -- "${tmp%/*}/" || exit 3
parent=$(stat -c %d:%i .) || exit 3
priv=$(mktemp -d "./${tmp##*/}.chk-XXXXXXXX") || exit 3
cd -P -- "$priv" || exit 3
if [ "$(stat -c %d:%i ..)" != "$parent" ] || [ "$(stat -c %u:%a .)" != 0:700 ] ||
    [ -n "$(ls -A .)" ]; then
  echo "refusing: ${tmp%/*}/$priv is not a private directory of root" >&2; exit 3
fi
inside=1
mv -f -- "../${tmp##*/}" ./data || exit 3
if [ ! -f ./data ] || [ -L ./data ] || [ "$(stat -c %u:%h ./data)" != 0:1 ]; then
  echo "refusing: $tmp is not a regular file of root" >&2; exit 4
fi
s=$(stat -c %s ./data) || exit 3
if [ "$s" != "$size" ]; then echo "size $s, expected $size" >&2; exit 4; fi
if [ -n "$sum" ]; then
  h=$("$tool" ./data) || exit 3
  if [ "${h%% *}" != "$sum" ]; then echo "$algo checksum mismatch" >&2; exit 5; fi
fi
mv -f -- ./data "../${dest##*/}" || exit 3
"""


class Commands:
    """The command lines of one wave: rsync from the head, rsync run on a node, verify."""

    def __init__(self, ssh, source, dest, size, checksum, timeout, verify=True):
        self.ssh = ssh
        self.source = source
        self.dest = dest
        self.size = size
        self.algorithm, self.digest = checksum
        self.timeout = timeout
        self.verify = verify
        head, base = os.path.split(dest)
        # Hidden twin in the same directory, so that the final rename is atomic.
        self.tmp = os.path.join(head, f".{base}.wave-{secrets.token_hex(4)}")

    def ssh_options(self):
        """Our ssh options plus a stall bound; host key checking stays as configured."""
        connect = max(1, min(self.ssh.connect_timeout, self.timeout))
        alive = max(1, self.timeout // 3)
        opts = []
        if self.ssh.config_file:
            opts += ["-F", self.ssh.config_file]
        opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect}",
                 "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3"]
        if self.ssh.user:
            opts += ["-l", self.ssh.user]
        return opts

    def rsh(self):
        return shlex.join(["ssh", *self.ssh_options()])

    def ssh_argv(self, host, remote_script):
        check_name(host, "host name")
        return ["ssh", *self.ssh_options(), "--", host, remote_script]  # "--": never an option

    def transfer_deadline(self):
        return self.timeout + self.size / MIN_RATE

    def from_head(self, target):
        check_name(target, "host name")
        return runner.rsync_argv(self.source, f"{target}:{self.tmp}", rsh=self.rsh(),
                                 extra=["--timeout", str(self.timeout)])

    def from_node(self, source_host, target):
        """ssh SOURCE rsync -e 'ssh ...' DEST TARGET:TMP, watched: the remote rsync is killed
        as soon as our ssh goes away (its stdin closes), so Ctrl-C leaves nothing running."""
        check_name(target, "host name")
        rsync = shlex.join(runner.rsync_argv(self.dest, f"{target}:{self.tmp}", rsh=self.rsh(),
                                             extra=["--timeout", str(self.timeout)]))
        # sh gives background jobs /dev/null as stdin: keep ours on fd 3 for the watchdog.
        script = (f"exec 3<&0; {rsync} </dev/null 3<&- & p=$!; "
                  f"(cat <&3 >/dev/null 2>&1; kill $p 2>/dev/null) >/dev/null 2>&1 & w=$!; "
                  f"exec 3<&-; wait $p; r=$?; kill $w 2>/dev/null; exit $r")
        return self.ssh_argv(source_host, shlex.join(["sh", "-c", script]))

    def check_and_rename(self, target):
        """On TARGET: the temporary file moved into a private directory, checked (regular,
        root's, size, checksum), then renamed into place (CHECK_SCRIPT)."""
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
        return self.ssh_argv(host, shlex.join(["rm", "-f", "--", self.tmp]))


# ---------------------------------------------------------------- engine

def format_rate(nbytes, seconds):
    rate = nbytes / max(seconds, 1e-6)
    if rate >= 1e9:
        return f"{rate / 1e9:.2f} GB/s"
    if rate >= 1e6:
        return f"{rate / 1e6:.1f} MB/s"
    return f"{rate / 1e3:.1f} kB/s"


def format_size(nbytes):
    return f"{nbytes / 1e6:.0f}MB" if nbytes >= 1e6 else f"{nbytes}B"


class _Wave:
    def __init__(self, cmds, hosts, reporter, tries, head_slots, seeds, head_name, children):
        self.cmds = cmds
        self.reporter = reporter
        self.tries = tries
        self.head_name = head_name
        self.children = children
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
            outcome = self.children.run(cmds.from_head(target), cmds.transfer_deadline())
        else:
            outcome = self.children.run(cmds.from_node(source, target), cmds.transfer_deadline(),
                                        keep_stdin_open=True)
        copied = time.monotonic() - started
        reason, source_broken = "", False
        if outcome.ok:
            check = self.children.run(cmds.check_and_rename(target), cmds.verify_deadline())
            if not check.ok:
                reason = f"verification failed: {_reason(check, 'verification')}"
                if check.returncode not in (4, 5) and not check.aborted:
                    # The check did not run to its end (it removes a bad copy itself).
                    self.children.run(cmds.remove_tmp(target), min(cmds.timeout, 10))
        else:
            # rsync removes its own temporary file when a transfer breaks off.
            reason = _reason(outcome, "transfer")
            if source != HEAD and not outcome.aborted:
                probe = self.children.run(cmds.holds_file(source), cmds.timeout)
                source_broken = not probe.ok and not probe.aborted
        self.events.put((source, target, reason, source_broken, copied,
                         time.monotonic() - started))

    # -- bookkeeping (main thread)
    def _finish(self, source, target, reason, source_broken, copied, seconds):
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
            self._say("ok", f"{name} --> {target} ({format_rate(self.cmds.size, copied)})")
            return
        self.tried_from[target].add(source)
        result.reason = reason
        if source_broken:
            reason += f" (source {name} is broken: no longer used)"
        else:
            result.tries += 1
        if result.tries < self.tries:
            self.pending.append(target)
            reason += f" (try {result.tries} of {self.tries}, retrying)" if not source_broken else ""
        self._say("fail", f"{name} --> {target}: {reason}")

    def _say(self, kind, text):
        tag = "[ ok ]" if kind == "ok" else "[FAIL]"
        self.reporter.write_line(f"{self.reporter.paint(kind, tag)} {text}")

    def run(self):
        self._start_ready()
        while self.in_flight:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            self._finish(*event)
            self._start_ready()
        for target in self.pending:  # no source could be found for these any more
            self.results[target].reason = self.results[target].reason or "no source left"

    def abort(self):
        """Ctrl-C: kill everything, then remove the temporary files of transfers in flight."""
        self.children.abort()
        for thread in self.threads:
            thread.join(5)
        cleaners = Children()
        workers = [threading.Thread(target=cleaners.run, daemon=True,
                                    args=(self.cmds.remove_tmp(t), 5)) for t in self.in_flight]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)


def distribute(source, dest, hosts, ssh, reporter, *, tries=DEFAULT_TRIES, head_slots=1,
               timeout=DEFAULT_TIMEOUT, seeds=(), verify=True, checksum=None, head_name=None):
    """Copy SOURCE (a local file) to DEST on every host of HOSTS, in waves; see the module
    docstring. Returns a WaveResult; raises WaveError on bad input (nothing copied) and
    KeyboardInterrupt after cleaning up when interrupted."""
    hosts = list(dict.fromkeys(hosts))
    seeds = list(dict.fromkeys(seeds))
    check_dest(dest)
    try:
        for host in hosts + seeds:
            check_name(host, "host name")
    except BadValue as err:
        raise WaveError(str(err)) from None
    if tries < 1:
        raise WaveError(f"--tries must be at least 1: {tries}")
    if head_slots < 1:
        raise WaveError(f"--head-slots must be at least 1: {head_slots}")
    if timeout < 1:
        raise WaveError(f"--timeout must be at least 1 second: {timeout}")
    if not os.path.isfile(source):
        raise WaveError(f"SOURCE is not a readable file: {source}")
    size = os.path.getsize(source)
    if checksum is None:
        checksum = ("sha1", file_checksum(source, "sha1"))
    if checksum[0] not in CHECKSUM_TOOLS or not re.fullmatch(r"[0-9a-f]+", checksum[1]):
        raise WaveError(f"unsupported checksum: {checksum!r}")
    cmds = Commands(ssh, source, dest, size, checksum, int(timeout), verify=verify)
    head_name = head_name or socket.gethostname()
    started = time.monotonic()
    reporter.info(f"transferring {source} to {len(hosts)} host(s)...")
    wave = _Wave(cmds, hosts, reporter, tries, head_slots, seeds, head_name, Children())
    try:
        wave.run()
    except BaseException:
        wave.abort()
        raise
    elapsed = time.monotonic() - started
    reporter.info(f"file size: {format_size(size)}")
    reporter.info(f"elapsed time: {elapsed:.2f}s")
    return WaveResult(wave.results, size, elapsed, wave.transfers, wave.broken)


def print_plan(rounds, reporter, head_name):
    """--dry-run: who sends to whom, round by round."""
    for number, pairs in enumerate(rounds, 1):
        reporter.info(f"round {number}:")
        for source, target in pairs:
            reporter.dry(f"{head_name if source == HEAD else source} --> {target}")
    hosts = sum(len(pairs) for pairs in rounds)
    reporter.info(f"{hosts} host(s) in {len(rounds)} round(s)")


def print_summary(result, reporter):
    """The closing lines; returns True when every host got the file."""
    reporter.write_line("")
    total = len(result.hosts)
    missing = result.failed()
    if not missing:
        reporter.write_line(reporter.paint("ok", f"All {total} host(s) have the file."))
        return True
    reporter.write_line(reporter.paint(
        "fail", f"{len(missing)} of {total} host(s) did not get the file: {hostlist.fold(missing)}"))
    for host in missing:
        reporter.write_line(f"  {host}: {result.hosts[host].reason}")
    return False


# ---------------------------------------------------------------- command line

def build_parser():
    parser = inputs.OneLineParser(
        prog="rsync-wave.py", usage=USAGE,
        description="Copy SOURCE to DEST on every host; every host that has it becomes a source.")
    parser.add_argument("--ssh-config", metavar="FILE", default=None,
                        help="ssh configuration (absolute path), also used by the nodes")
    parser.add_argument("--tries", type=TRIES, default=DEFAULT_TRIES, metavar="N",
                        help="transfers tried per host (default %(default)s)")
    parser.add_argument("--head-slots", type=HEAD_SLOTS, default=1, metavar="K",
                        help="transfers the head runs at once (default 1)")
    parser.add_argument("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT, metavar="S",
                        help="seconds without progress before a transfer is abandoned "
                             "(default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, copy nothing")
    parser.add_argument("--pipeline", action="store_true",
                        help="pipelined chains (hltcloud.pipeline), the wave completing what they miss")
    parser.add_argument("--no-colors", action="store_true")
    parser.add_argument("--line-output", action="store_true")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="site configuration (default $HLTCLOUD_CONFIG or /etc/hltcloud.conf)")
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("dest", metavar="DEST")
    parser.add_argument("hosts", metavar="HOSTS", nargs="+")
    return parser


def engine(pipelined):
    """(plan, print_plan, distribute) of a transfer mode: pipelined chains or the wave."""
    if pipelined:
        from . import pipeline  # it imports this module
        return pipeline.plan_chains, pipeline.print_plan, pipeline.distribute
    return plan_rounds, print_plan, distribute


def print_dry_run(source, hosts, reporter, pipelined, head_slots=1):
    """The plan of a transfer of SOURCE to HOSTS, nothing copied."""
    plan, show_plan, _ = engine(pipelined)
    reporter.info(f"transferring {source} to {len(hosts)} host(s) "
                  "(dry run: the plan, nothing is copied)")
    show_plan(plan(hosts, head_slots), reporter, socket.gethostname())


def expand_hosts(words):
    """Host list words (pdsh-style lists, @files) -> names, in order, without duplicates."""
    names = hostlist.expand(*words)
    if not names:
        raise WaveError("no hosts given")
    return names


def make_ssh(args):
    cfg = config.load(args.config)
    return runner.Ssh(args.ssh_config if args.ssh_config is not None else cfg.ssh_config,
                      cfg.ssh_user, cfg.connect_timeout)


def local_source(path):
    """SOURCE checked and spelled for rsync: a regular file we can open; a relative name with
    a colon before any '/' would be taken by rsync as HOST:PATH, so it gets a './'."""
    try:
        inputs.check_regular_file(path, "SOURCE")
    except inputs.InputError as err:
        raise WaveError(f"SOURCE is not a readable file: {path!r} ({err.reason})") from None
    if ":" in path.split("/", 1)[0]:
        return "./" + path
    return path


def main(argv=None):
    return run_main("rsync-wave.py", lambda: _main(argv))


def _main(argv):
    args = build_parser().parse_args(argv)
    reporter = Reporter(no_colors=args.no_colors, line_output=args.line_output)
    # The dry run checks exactly what the real run does, before printing anything.
    hosts = [check_name(host, "host name") for host in expand_hosts(args.hosts)]
    ssh = make_ssh(args)
    check_dest(args.dest)
    if args.pipeline and ssh.config_file:
        from . import pipeline  # it imports this module
        pipeline.check_node_path(ssh.config_file, "the nodes' ssh config")
    source = local_source(args.source)
    if args.dry_run:
        print_dry_run(source, hosts, reporter, args.pipeline, args.head_slots)
        return 0
    _, _, transfer = engine(args.pipeline)
    result = transfer(source, args.dest, hosts, ssh, reporter, tries=args.tries,
                      head_slots=args.head_slots, timeout=args.timeout)
    return OK if print_summary(result, reporter) else FAILED
