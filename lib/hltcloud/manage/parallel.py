"""--parallel: the per-host work of enable/disable through `pdsh -R exec`.

pdsh starts this same tool once a host (`... --line-output --subworker CMD %h`) with the
parent's token in the environment (cloud.handoff_env), so subworkers never authenticate
and no secret is on a command line. pdsh prefixes each line with the host; the parent
echoes the human lines and prints the only summary. A host's result is its subworker's
last line, its Outcome as JSON (ops/outcomes.py), taken only for the host pdsh labelled it
with; a subworker that ends without one failed (pdsh's report gives its exit code).
"""
import os
import re
import subprocess
import sys
import threading

from hltcloud.manage.options import forwarded_switches
from hltcloud.cloud.credentials import SECRETS
from hltcloud.ops.outcomes import INTERRUPTED, MARK, NOT_STARTED, BadOutcome, Outcome
from hltcloud.proc.runner import host_file, pdsh_exec_argv, start, stop_with_children

_EXIT = re.compile(r"^pdsh@[^:]*: ([^:]+): .*exited with exit code (\d+)")
_LINE = re.compile(r"^([^:\s]+): ?(.*)$")


def worker_command():
    """How to start this tool again: its executable, or the module beside the library."""
    exe = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(exe) == "openstack-hlt-manage" and os.access(exe, os.X_OK):
        return [exe]
    return [sys.executable, "-m", "hltcloud.manage.cli"]


def worker_env(cloud):
    env = dict(os.environ)
    env.update(cloud.handoff_env())
    for secret in SECRETS:  # subworkers have the token; they need no other secret
        env.pop(secret, None)
    lib = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (lib, env.get("PYTHONPATH")) if p)
    return env


def label_map(hosts):
    """pdsh labels lines with the full or the short host name: map both back."""
    shorts = {}
    for host in hosts:
        shorts.setdefault(host.split(".")[0], []).append(host)
    mapping = {short: group[0] for short, group in shorts.items() if len(group) == 1}
    mapping.update({host: host for host in hosts})
    return mapping


def run_through_pdsh(ctx, command, hosts, outcomes, prepared=False):
    """Run COMMAND on HOSTS through pdsh: each host's outcome is added to OUTCOMES (in the
    order of HOSTS); after Ctrl-C too, and KeyboardInterrupt goes on. PREPARED: this parent
    has disabled HOSTS and sent their deletes (takeback.py) and holds their locks."""
    more = ["--prepared"] if prepared else []
    with host_file(hosts) as path:
        argv = pdsh_exec_argv(path, [*worker_command(), "--line-output", "--subworker", *more,
                                     *forwarded_switches(ctx.opts), command, "%h"],
                              ctx.opts.fanout)
        _run_pdsh(ctx, argv, hosts, outcomes)


def _start_pdsh(ctx, argv, hosts, outcomes):
    """pdsh in its own process group (Ctrl-C reaches only us; we stop it), or None after
    saying that it cannot run."""
    try:
        return start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     env=worker_env(ctx.cloud))
    except OSError as err:
        outcomes.extend(Outcome(host).failed(f"{host}: cannot run pdsh: {err.strerror}")
                        for host in hosts)
        ctx.rep.fail(f"--parallel needs pdsh: {err.strerror}")
        return None


class _Subworkers:
    """What pdsh tells of the subworkers: each host's last line and exit code."""

    def __init__(self, rep, hosts):
        self.rep = rep
        self.labels = label_map(hosts)
        self.last, self.exit_codes = {}, {}
        self.total, self.ended, self.failed = len(hosts), set(), set()
        progress = rep.progress("--parallel")
        self.progress = progress if progress.in_place else None  # a TTY's line only

    def read_stdout(self, stream):
        """Echo the human lines, whole, the host named once (pdsh's label only where the
        line does not name it); keep each host's last line; count the hosts that ended."""
        for line in stream:
            line = line.rstrip("\n")
            match = _LINE.match(line)
            if not match:
                self.rep.info(line)
                continue
            host = self.labels.get(match.group(1), match.group(1))
            text = self.last[host] = match.group(2)
            if text.startswith(MARK):  # for us, not for people
                self._ended(host, text)
            else:
                self.rep.info(text if re.search(rf"\b{re.escape(host)}\b", text)
                              else f"{host}: {text}")

    def _ended(self, host, line):
        self.ended.add(host)
        if self.outcome(host).ok is False:
            self.failed.add(host)
        if self.progress is not None:
            self.progress.update(f"{len(self.ended)}/{self.total} hosts done, "
                                 f"{len(self.failed)} failed, "
                                 f"{self.total - len(self.ended)} running")

    def read_stderr(self, stream):
        for line in stream:
            line = line.rstrip("\n")
            match = _EXIT.match(line)
            if match:
                host = self.labels.get(match.group(1), match.group(1))
                self.exit_codes[host] = int(match.group(2))
            else:
                self.rep.info(line)

    def outcome(self, host, interrupted=False):
        """HOST's outcome: its subworker's last line if that is its outcome, else why not."""
        last = self.last.get(host)
        if last is not None and last.startswith(MARK):
            try:
                return Outcome.from_line(last, host)
            except BadOutcome as err:
                return Outcome(host).failed(f"{host}: subworker's result refused: {err}")
        if interrupted:
            if last is None:
                return Outcome(host, NOT_STARTED, f"{host}: not started (interrupted)")
            return Outcome(host, INTERRUPTED, f"{host}: interrupted (may be partly done)")
        code = self.exit_codes.get(host)
        reason = f"subworker exited with code {code}" if code else "subworker ended without a result"
        return Outcome(host).failed(f"{host}: {reason}")


def _run_pdsh(ctx, argv, hosts, outcomes):
    proc = _start_pdsh(ctx, argv, hosts, outcomes)
    if proc is None:
        return
    subworkers = _Subworkers(ctx.rep, hosts)
    readers = [threading.Thread(target=read, args=(stream,), daemon=True)
               for read, stream in ((subworkers.read_stdout, proc.stdout),
                                    (subworkers.read_stderr, proc.stderr))]
    for thread in readers:
        thread.start()
    try:
        proc.wait()
    except KeyboardInterrupt:
        stop_with_children(proc)
        for thread in readers:
            thread.join(5)
        outcomes.extend(subworkers.outcome(host, interrupted=True) for host in hosts)
        raise
    for thread in readers:
        thread.join()
    outcomes.extend(subworkers.outcome(host) for host in hosts)
