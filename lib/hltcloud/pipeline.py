"""Pipelined chain broadcast: every host receives the file once and passes it on while it
receives, so N hosts take about the time of one copy (issue 7), instead of the wave's
log2(N+1) rounds.

    distribute(source, dest, hosts, ssh, reporter, *, head_slots=1, timeout=60, tries=3,
               fallback=True, checksum=None, head_name=None, node_ssh_config=None,
               progress_interval=None) -> wave.WaveResult

Plan: the hosts are cut into HEAD_SLOTS chains of consecutive hosts; the head streams the
file into the first host of each chain. With the same link speed everywhere one chain is the
fastest (every uplink carries the file once at full speed); more chains share the head's.

Sessions (all opened at once, so that ssh handshakes, ~0.1-0.3 s each, do not add up along
a chain):
- head -> first host of a chain: RECV, with the file on its stdin;
- head -> every host H but the last of its chain: FORWARD, which runs
  `cat FIFO | ssh NEXT RECV` on H; the ssh to NEXT carries NEXT's RECV.
RECV on a host: `tee -p TMP FIFO | sha1sum` (tee -p keeps writing the file when the
forwarding breaks), a once-a-second "P host bytes" heartbeat, then size and checksum are
checked and TMP is renamed into place. TMP, FIFO and the records of the process groups live
in a private directory of the run (root only, hidden beside DEST). Status lines travel back to the
head on the stdout of the session that carries the RECV.

Faults: a host that fails or stalls breaks the chain after it; the head kills the sessions of
hosts without progress for TIMEOUT seconds (or a few seconds after their upstream failed),
and the hosts that did not get the file are completed by the wave (wave.distribute) with the
hosts that did as seeds. Remote work dies with its ssh: FORWARD watches its stdin (the head's
pipe), RECV stops at end of input, at a failed heartbeat write, or after TIMEOUT seconds
without data, and removes TMP. Their watchers kill the whole process group again and again
until the script is gone: a single kill can miss a child forked just after it. Ctrl-C kills every session's process group and re-raises.
"""
import os
import queue
import re
import secrets
import shlex
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from . import wave
from .validate import BadValue, check_name

# Cheap ciphers (AES-NI or ChaCha20), no compression: every host decrypts and re-encrypts
# the whole file. Cheap key exchange: a run opens 2N-1 connections at once, and OpenSSH 9's
# default (sntrup761x25519) costs ~8x the CPU of curve25519 on the client alone.
FAST_SSH_OPTIONS = ["-o", "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr",
                    "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org,"
                          "ecdh-sha2-nistp256,diffie-hellman-group14-sha256",
                    "-o", "Compression=no", "-o", "ForwardAgent=no", "-o", "ForwardX11=no"]
UPSTREAM_GRACE = 5.0  # seconds a host may go without data once the host before it failed
MARK = "HLTPIPE"  # status lines: "HLTPIPE P|OK|F HOST TEXT"
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]*\Z")

# Both node scripts run as root in DEST's directory, which the nova user may write; every
# name in ps is visible to local users. So all helper files (data, data.st, recv.pgid, fifo,
# fwd.pgid) live in one private directory of the run (0700, in DEST's directory: the final
# rename is atomic), used by relative names after `cd -P` into it and checks: ".." is the
# directory we came from, root owns it, mode 700. RECV and FORWARD of one host race to make
# it: both accept an existing one that passes the checks (only root can make such a one).
_ENTER = r"""
enter() {
  cd -P -- "${1%/*}/" || return 1
  parent=$(stat -c %d:%i .) || return 1
  mkdir -m 700 -- "./${1##*/}" 2>/dev/null
  cd -P -- "./${1##*/}" || return 1
  [ "$(stat -c %d:%i ..)" = "$parent" ] && [ "$(stat -c %u:%a .)" = 0:700 ]
}
leave() { cd -P .. && rmdir -- "./${1##*/}" 2>/dev/null; }
reap() {
  trap "" TERM; i=0
  while [ "$i" -lt 20 ] && kill -0 "$1" 2>/dev/null; do kill -TERM 0; sleep 0.5; i=$((i + 1)); done
}
"""

# RECV: $1 host, $2 dest, $3 private dir, $4 "1" to feed the fifo ("" at a chain's end),
# $5 size, $6 digest, $7 checksum tool, $8 stall seconds. sh (dash) runs it; no bashisms, no
# single quotes.
RECV_SCRIPT = _ENTER + r"""
host=$1 dest=$2 priv=$3 feed=$4 size=$5 sum=$6 tool=$7 stall=$8 mon= inside=
say() { printf "HLTPIPE %s %s %s\n" "$1" "$host" "$2"; }
clean() {
  if [ -n "$inside" ]; then
    inside=; rm -f -- data data.st recv.pgid; if [ -n "$feed" ]; then rm -f -- fifo; fi
    leave "$priv"
  fi
}
fail() { say F "$1"; clean; if [ -n "$mon" ]; then kill "$mon" 2>/dev/null; fi; exit 1; }
trap "clean; exit 1" HUP INT TERM PIPE
[ -d "${dest%/*}/" ] || fail "no directory ${dest%/*}"
enter "$priv" || fail "refusing: $priv is not a private directory of root"
inside=1
set -C  # new files only: never write through a name that exists
: > data || fail "cannot write $priv/data"
# Our process group, for the head's cleanup after Ctrl-C (it kills by this record).
read -r pst < /proc/$$/stat && set -- ${pst##*) } && echo "$3" > recv.pgid
if [ -n "$feed" ]; then
  [ -p fifo ] || mkfifo -m 600 fifo 2>/dev/null
  [ -p fifo ] || fail "cannot make $priv/fifo"
fi
(
  trap "" PIPE
  last=-1 idle=0
  while sleep 1; do
    n=$(stat -c %s data 2>/dev/null) || { reap $$; exit 0; }
    if [ "$n" = "$last" ]; then idle=$((idle + 1)); else idle=0; last=$n; fi
    if ! say P "$n" 2>/dev/null; then reap $$; exit 0; fi
    if [ "$idle" -ge "$stall" ]; then say F "no data for $stall s"; reap $$; exit 0; fi
  done
) &
mon=$!
got=$( { tee -p -- data ${feed:+fifo}; echo "$?" > data.st; } | "$tool" )
st=$(cat data.st 2>/dev/null)
n=$(stat -c %s data 2>/dev/null)
[ "$st" = 0 ] || fail "write error on $priv/data"
[ "$n" = "$size" ] || fail "got $n of $size bytes"
[ "${got%% *}" = "$sum" ] || fail "checksum mismatch"
rm -f -- data.st
trap "" HUP INT TERM  # verified: finish, whatever happens now
chmod 644 data && mv -f -- data "../${dest##*/}" || fail "cannot rename into $dest"
clean
say OK "$n"
kill -TERM 0
exit 0
"""

# FORWARD: $1 host, $2 private dir, then the ssh command line towards the next host.
FORWARD_SCRIPT = _ENTER + r"""
host=$1 priv=$2 inside=
shift 2
clean() { if [ -n "$inside" ]; then inside=; rm -f -- fifo fwd.pgid; leave "$priv"; fi; }
# PIPE too: with the session gone, even sh's own "Terminated" note on stderr is fatal.
trap "clean; exit 1" HUP INT TERM PIPE
enter "$priv" || { echo "refusing: $priv is not a private directory of root" >&2; exit 1; }
inside=1
set -C
read -r pst < /proc/$$/stat && (set -- ${pst##*) }; echo "$3" > fwd.pgid)
exec 3<&0
( trap "" PIPE; cat <&3; reap $$ ) >/dev/null 2>&1 &
exec 3<&-
[ -p fifo ] || mkfifo -m 600 fifo 2>/dev/null
[ -p fifo ] || { echo "cannot make $priv/fifo" >&2; clean; exit 1; }
cat fifo | "$@"
st=$?
clean
trap "" TERM
kill -TERM 0
exit $st
"""


# CLEANUP (after Ctrl-C): $1 private dir. Kill the process groups our scripts recorded in it
# (nowhere else: a record anyone else could write is no record), wait until they are gone,
# remove what they left. Nothing of the run survives the command.
CLEANUP_SCRIPT = r"""
cd -P -- "${1%/*}/" 2>/dev/null || exit 0
parent=$(stat -c %d:%i .) || exit 0
cd -P -- "./${1##*/}" 2>/dev/null || exit 0  # no directory: nothing of ours runs
if [ "$(stat -c %d:%i ..)" != "$parent" ] || [ "$(stat -c %u:%a .)" != 0:700 ]; then
  echo "refusing: $1 is not a private directory of root" >&2; exit 1
fi
for f in recv.pgid fwd.pgid; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  g=$(cat -- "$f"); rm -f -- "$f"
  case "$g" in ""|*[!0-9]*) continue;; esac
  [ "$g" -gt 1 ] || continue
  kill -TERM "-$g" 2>/dev/null
  i=0
  while [ "$i" -lt 20 ] && kill -0 "-$g" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
  kill -KILL "-$g" 2>/dev/null
done
rm -f -- data data.st fifo
cd -P .. && rmdir -- "./${1##*/}" 2>/dev/null
exit 0
"""


class PipelineError(ValueError):
    """Bad input: reported in one line, exit 2, nothing copied."""


# ---------------------------------------------------------------- planning (pure)

def plan_chains(hosts, head_slots=1):
    """Cut HOSTS (in order) into HEAD_SLOTS chains of consecutive hosts, as even as possible;
    never more chains than hosts."""
    if head_slots < 1:
        raise PipelineError(f"--head-slots must be at least 1: {head_slots}")
    hosts = list(dict.fromkeys(hosts))
    count = min(head_slots, len(hosts))
    chains, start = [], 0
    for index in range(count):
        length = len(hosts) // count + (1 if index < len(hosts) % count else 0)
        chains.append(hosts[start:start + length])
        start += length
    return chains


def print_plan(chains, reporter, head_name):
    """--dry-run: who sends to whom, chain by chain (the wave's plan lines)."""
    for number, chain in enumerate(chains, 1):
        reporter.info(f"chain {number}:")
        for upstream, host in zip([head_name, *chain], chain):
            reporter.dry(f"{upstream} --> {host}")
    total = sum(len(chain) for chain in chains)
    reporter.info(f"{total} host(s) in {len(chains)} pipelined chain(s)")


def check_node_path(path, what):
    if not isinstance(path, str) or not _SAFE_PATH.match(path):
        raise PipelineError(f"{what} must be an absolute path (letters, digits, . _ + - /): {path!r}")
    return path


# ---------------------------------------------------------------- remote commands

class Commands:
    """The command lines of one pipelined run."""

    def __init__(self, ssh, dest, size, checksum, timeout, node_ssh_config, run_id=None):
        self.ssh = ssh
        self.dest = dest
        self.size = int(size)
        self.algorithm, self.digest = checksum
        self.tool = wave.CHECKSUM_TOOLS[self.algorithm]
        self.timeout = int(timeout)
        self.node_ssh_config = node_ssh_config
        head, base = os.path.split(dest)
        run_id = run_id or secrets.token_hex(4)
        # The run's private directory, hidden in DEST's directory: the final rename is atomic.
        self.private = os.path.join(head, f".{base}.pipe-{run_id}")

    def _options(self, config_file):
        connect = max(1, min(self.ssh.connect_timeout, self.timeout))
        alive = max(1, min(5, self.timeout // 3))
        opts = ["-F", config_file] if config_file else []
        opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect}",
                 "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3",
                 *FAST_SSH_OPTIONS]
        if self.ssh.user:
            opts += ["-l", self.ssh.user]
        return opts

    def recv(self, host, last):
        """The remote command string that receives on HOST (and feeds its FIFO unless LAST)."""
        check_name(host, "host name")
        return shlex.join(["sh", "-c", RECV_SCRIPT, "hltpipe-recv", host, self.dest,
                           self.private, "" if last else "1", str(self.size), self.digest,
                           self.tool, str(self.timeout)])

    def head_recv(self, host, last):
        """Run on the head: ssh HOST RECV, the file on its stdin."""
        return ["ssh", *self._options(self.ssh.config_file), "--", host, self.recv(host, last)]

    def head_forward(self, host, next_host, next_last):
        """Run on the head: ssh HOST FORWARD, which sends HOST's FIFO into NEXT_HOST's RECV."""
        check_name(host, "host name")
        check_name(next_host, "host name")
        node_ssh = ["ssh", *self._options(self.node_ssh_config), "--", next_host,
                    self.recv(next_host, next_last)]
        remote = shlex.join(["sh", "-c", FORWARD_SCRIPT, "hltpipe-fwd", host, self.private,
                             *node_ssh])
        return ["ssh", *self._options(self.ssh.config_file), "--", host, remote]

    def cleanup(self, host):
        """Remove our temporary twins on HOST (after an interrupted run)."""
        return ["ssh", *self._options(self.ssh.config_file), "--", check_name(host, "host name"),
                shlex.join(["sh", "-c", CLEANUP_SCRIPT, "hltpipe-clean", self.private])]


# ---------------------------------------------------------------- engine

@dataclass
class _Host:
    name: str
    chain: int
    upstream: str  # the head name or the host before it
    bytes: int = 0
    changed: float = 0.0  # when its byte count last changed
    grace_until: float = 0.0  # set when its upstream failed
    state: str = "wait"  # wait, ok, fail
    reason: str = ""
    seconds: float = 0.0


@dataclass
class _Session:
    role: str  # "recv" (head -> first host) or "fwd" (forwarder on host)
    host: str  # the host the session runs on
    carries: str  # the host whose RECV status comes through this session
    proc: subprocess.Popen
    stderr: list = field(default_factory=list)
    readers: list = field(default_factory=list)
    done: bool = False


class _Pipeline:
    def __init__(self, cmds, chains, source, reporter, head_name, progress_interval):
        self.cmds = cmds
        self.chains = chains
        self.source = source
        self.reporter = reporter
        self.head_name = head_name
        self.events = queue.Queue()
        self.sessions = []
        self.hosts = {}
        self.next_of = {}
        self.started = time.monotonic()
        for index, chain in enumerate(chains):
            for position, host in enumerate(chain):
                upstream = chain[position - 1] if position else head_name
                self.hosts[host] = _Host(host, index, upstream, changed=self.started)
                self.next_of[host] = chain[position + 1] if position + 1 < len(chain) else None
        self.progress = reporter.progress("pipelining")
        self.progress_interval = progress_interval
        self._last_progress = 0.0

    # -- sessions
    def _start(self, role, host, carries, argv, stdin):
        proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        session = _Session(role, host, carries, proc)
        for stream, sink in ((proc.stdout, self._read_stdout), (proc.stderr, self._read_stderr)):
            reader = threading.Thread(target=sink, args=(session, stream), daemon=True)
            session.readers.append(reader)
            reader.start()
        self.sessions.append(session)

    def _read_stdout(self, session, stream):
        for raw in stream:
            words = raw.decode(errors="replace").rstrip("\n").split(" ", 3)
            if len(words) >= 3 and words[0] == MARK and words[2] in self.hosts:
                self.events.put((words[1], words[2], words[3] if len(words) > 3 else ""))

    def _read_stderr(self, session, stream):
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if line:
                session.stderr = (session.stderr + [line])[-5:]

    def start(self):
        # Forwarders first: the head's stream can only flow once the chain is connected.
        for chain in self.chains:
            for position, host in enumerate(chain[:-1]):
                nxt = chain[position + 1]
                self._start("fwd", host, nxt,
                            self.cmds.head_forward(host, nxt, position + 2 == len(chain)),
                            subprocess.PIPE)
        for chain in self.chains:
            with open(self.source, "rb") as data:
                self._start("recv", chain[0], chain[0],
                            self.cmds.head_recv(chain[0], len(chain) == 1), data)

    def kill(self, session):
        if session.proc.poll() is None:
            wave._kill_group(session.proc, grace=1.0)

    def kill_all(self):
        for session in self.sessions:
            try:
                os.killpg(session.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        for session in self.sessions:
            self.kill(session)
            if session.proc.stdin:
                session.proc.stdin.close()

    # -- host states
    def _finish(self, host, ok, reason=""):
        state = self.hosts[host]
        if state.state != "wait":
            return
        now = time.monotonic()
        state.state, state.reason, state.seconds = ("ok" if ok else "fail"), reason, now - self.started
        if ok:
            state.bytes = self.cmds.size
            tag = self.reporter.paint("ok", "[ ok ]")  # the wave's transfer lines
            self.reporter.write_line(f"{tag} {state.upstream} --> {host} "
                                     f"({wave.format_rate(self.cmds.size, state.seconds)})")
            return
        self.reporter.warn(f"{state.upstream} --> {host}: {reason}")
        nxt = self.next_of[host]
        if nxt and self.hosts[nxt].state == "wait":
            self.hosts[nxt].grace_until = now + min(UPSTREAM_GRACE, self.cmds.timeout)
        # Its status channel has nothing more to say: a forwarder whose receiver failed
        # early (say, refused its directory) would wait on its fifo for ever.
        for session in self.sessions:
            if session.carries == host and not session.done:
                self.kill(session)

    def _event(self, kind, host, text):
        state = self.hosts[host]
        if kind == "P":
            try:
                count = int(text)
            except ValueError:
                return
            if count != state.bytes:
                state.bytes, state.changed, state.grace_until = count, time.monotonic(), 0.0
        elif kind == "OK":
            self._finish(host, True)
        elif kind == "F":
            self._finish(host, False, text or "failed")

    def _session_ended(self, session):
        session.done = True
        host = self.hosts[session.carries]
        if host.state == "wait":
            detail = session.stderr[-1] if session.stderr else \
                f"ssh exited with {session.proc.returncode}"
            where = "" if session.role == "recv" else f" (forwarding on {session.host})"
            self._finish(session.carries, False, f"{detail}{where}")
        if session.proc.stdin:
            session.proc.stdin.close()

    def _stall_check(self, now):
        for host in self.hosts.values():
            if host.state != "wait":
                continue
            stalled = now - host.changed > self.cmds.timeout
            cut_off = host.grace_until and now > host.grace_until
            if not (stalled or cut_off):
                continue
            reason = (f"no data for {self.cmds.timeout} s" if stalled
                      else f"no data after {host.upstream} failed")
            self._finish(host.name, False, reason)
            # Stop what feeds it and what it feeds: the hosts after it fail fast, and get
            # the file from the fallback.
            for session in self.sessions:
                if session.carries == host.name or session.host == host.name:
                    self.kill(session)

    def _show_progress(self, now, final=False):
        """Bytes and rate per chain: those of its slowest host still receiving."""
        if not final and now - self._last_progress < self.progress_interval:
            return
        self._last_progress = now
        parts = []
        for index, chain in enumerate(self.chains, 1):
            states = [self.hosts[h] for h in chain]
            if final:
                got = sum(1 for s in states if s.state == "ok")
                parts.append(f"chain {index}: {got}/{len(chain)} host(s) got it")
                continue
            waiting = [s.bytes for s in states if s.state == "wait"]
            tail = min(waiting) if waiting else self.cmds.size
            done = sum(1 for s in states if s.state != "wait")
            rate = wave.format_rate(tail, now - self.started)
            parts.append(f"chain {index}: {tail / 1e6:.0f}/{self.cmds.size / 1e6:.0f} MB "
                         f"{rate}, {done}/{len(chain)} host(s) done")
        self.progress.update(", ".join(parts))

    def run(self):
        self.start()
        while True:
            try:
                event = self.events.get(timeout=0.2)
                self._event(*event)
                continue
            except queue.Empty:
                pass
            now = time.monotonic()
            for session in self.sessions:
                if not session.done and session.proc.poll() is not None and \
                        not any(r.is_alive() for r in session.readers):
                    while not self.events.empty():  # its last status lines first
                        self._event(*self.events.get())
                    self._session_ended(session)
            self._stall_check(now)
            if all(session.done for session in self.sessions):
                break
            self._show_progress(now)
        for host in self.hosts.values():  # every session ended: no more news
            if host.state == "wait":
                self._finish(host.name, False, "no status")


def distribute(source, dest, hosts, ssh, reporter, *, head_slots=1, timeout=wave.DEFAULT_TIMEOUT,
               tries=wave.DEFAULT_TRIES, fallback=True, checksum=None, head_name=None,
               node_ssh_config=None, progress_interval=None):
    """Copy SOURCE (a local file) to DEST on every host of HOSTS through pipelined chains, then
    complete the hosts that missed it with the wave (unless FALLBACK is false). NODE_SSH_CONFIG
    is the ssh config path the nodes use towards each other (default: the head's path).
    Returns a wave.WaveResult; raises PipelineError or wave.WaveError on bad input, and
    KeyboardInterrupt after killing everything when interrupted."""
    hosts = list(dict.fromkeys(hosts))
    wave.check_dest(dest)
    try:
        for host in hosts:
            check_name(host, "host name")
    except BadValue as err:
        raise PipelineError(str(err)) from None
    if not hosts:
        raise PipelineError("no hosts given")
    if timeout < 1:
        raise PipelineError(f"--timeout must be at least 1 second: {timeout}")
    if not os.path.isfile(source):
        raise PipelineError(f"SOURCE is not a readable file: {source}")
    node_ssh_config = node_ssh_config if node_ssh_config is not None else ssh.config_file
    if node_ssh_config:
        check_node_path(node_ssh_config, "the nodes' ssh config")
    chains = plan_chains(hosts, head_slots)
    size = os.path.getsize(source)
    if checksum is None:
        checksum = ("sha1", wave.file_checksum(source, "sha1"))
    if checksum[0] not in wave.CHECKSUM_TOOLS or not re.fullmatch(r"[0-9a-f]+", checksum[1]):
        raise PipelineError(f"unsupported checksum: {checksum!r}")
    cmds = Commands(ssh, dest, size, checksum, timeout, node_ssh_config)
    head_name = head_name or socket.gethostname()
    if progress_interval is None:  # in place on a TTY; whole lines now and then otherwise
        progress_interval = 1.0 if _is_tty(reporter.stream) and not reporter.line_output else 5.0
    started = time.monotonic()
    reporter.info(f"transferring {source} to {len(hosts)} host(s)...")  # as the wave says it
    reporter.info(f"pipelined: {len(chains)} chain(s) of {', '.join(str(len(c)) for c in chains)} host(s)")
    run = _Pipeline(cmds, chains, source, reporter, head_name, progress_interval)
    try:
        run.run()
    except BaseException:
        run.kill_all()
        _remove_twins(cmds, hosts)
        raise
    run._show_progress(time.monotonic(), final=True)
    results = {}
    for host in hosts:
        state = run.hosts[host]
        results[host] = wave.HostResult(host, ok=state.state == "ok", source=state.upstream,
                                        reason=state.reason,
                                        bytes=size if state.state == "ok" else 0,
                                        elapsed=state.seconds, tries=1)
    transfers = [(run.hosts[h].upstream, h, results[h].ok, results[h].reason, results[h].elapsed)
                 for h in hosts]
    missing = [h for h in hosts if not results[h].ok]
    if missing and fallback:
        seeds = [h for h in hosts if results[h].ok]
        reporter.info(f"completing {len(missing)} host(s) with the wave "
                      f"from {len(seeds)} host(s) that have the file")
        rest = wave.distribute(source, dest, missing, ssh, reporter, tries=tries,
                               head_slots=head_slots, timeout=timeout, seeds=seeds,
                               checksum=checksum, head_name=head_name)
        for host in missing:
            again = rest.hosts[host]
            if not again.ok:
                again.reason = again.reason or results[host].reason
            results[host] = again
        transfers += rest.transfers
        reporter.info(f"total elapsed time: {time.monotonic() - started:.2f}s")
    else:
        reporter.info(f"file size: {wave.format_size(size)}")
        reporter.info(f"elapsed time: {time.monotonic() - started:.2f}s")
    return wave.WaveResult(results, size, time.monotonic() - started, transfers, [])


def _remove_twins(cmds, hosts):
    """After Ctrl-C: the remote sides end by themselves within a second or two; this ends them
    now (by their recorded process groups) and removes their files, bounded in time."""
    procs = []
    for host in hosts:
        try:
            procs.append(subprocess.Popen(cmds.cleanup(host), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        except OSError:
            break
    deadline = time.monotonic() + 8
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            wave._kill_group(proc, grace=1.0)


def _is_tty(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
