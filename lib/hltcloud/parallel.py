"""--parallel: the per-host work of enable/disable through `pdsh -R exec`.

pdsh starts this same tool once a host (`... --line-output --subworker CMD %h`) with the
parent's token in the environment (cloud.handoff_env), so subworkers never authenticate
and no secret is on a command line. pdsh prefixes each line with the host; the parent
echoes the lines, collects the [FAIL] ones and pdsh's exit-code reports, and prints the
only summary.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

from .manage_cli import forwarded_switches
from .credentials import SECRETS
from .runner import host_file, pdsh_exec_argv

DONE_MARK = "[ OK ] Done on "  # a subworker's last line when its host succeeded
_EXIT = re.compile(r"^pdsh@[^:]*: ([^:]+): .*exited with exit code (\d+)")
_LINE = re.compile(r"^([^:\s]+): ?(.*)$")


def worker_command():
    """How to start this tool again: its executable, or the module beside the library."""
    exe = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(exe) == "openstack-hlt-manage" and os.access(exe, os.X_OK):
        return [exe]
    return [sys.executable, "-m", "hltcloud.manage"]


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


def run_through_pdsh(ctx, command, hosts):
    """Run COMMAND on HOSTS through pdsh; failures are recorded in ctx.rep. True if all ok."""
    with host_file(hosts) as path:
        argv = pdsh_exec_argv(path, [*worker_command(), "--line-output", "--subworker",
                                     *forwarded_switches(ctx.opts), command, "%h"],
                              ctx.opts.fanout)
        return _run_pdsh(ctx, argv, hosts)


def _run_pdsh(ctx, argv, hosts):
    rep = ctx.rep
    labels = label_map(hosts)
    failed, done, started, exit_codes = set(), set(), set(), {}
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=worker_env(ctx.cloud), stdin=subprocess.DEVNULL,
                                start_new_session=True)  # Ctrl-C reaches only us; we stop pdsh
    except OSError as err:
        for host in hosts:
            rep.record_failure(f"{host}: cannot run pdsh: {err.strerror}", host)
        rep.fail(f"--parallel needs pdsh: {err.strerror}")
        return False

    def read_stdout():
        for line in proc.stdout:
            line = line.rstrip("\n")
            rep.info(line)
            match = _LINE.match(line)
            if not match:
                continue
            host = labels.get(match.group(1), match.group(1))
            text = match.group(2)
            started.add(host)
            if text.startswith("[FAIL] "):
                failed.add(host)
                rep.record_failure(text[len("[FAIL] "):], host)
            elif text.startswith(DONE_MARK):
                done.add(host)

    def read_stderr():
        for line in proc.stderr:
            line = line.rstrip("\n")
            match = _EXIT.match(line)
            if match:
                exit_codes[labels.get(match.group(1), match.group(1))] = int(match.group(2))
            else:
                rep.info(line)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stdout, read_stderr)]
    for thread in readers:
        thread.start()
    try:
        proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        for thread in readers:
            thread.join(5)
        for host in hosts:
            if host in done or host in failed:
                continue
            what = "interrupted (may be partly done)" if host in started else "not started (interrupted)"
            rep.record_failure(f"{host}: {what}", host)
        raise
    for thread in readers:
        thread.join()
    for host in hosts:
        if host in failed or host in done:
            continue
        code = exit_codes.get(host)
        reason = f"subworker exited with code {code}" if code else "subworker ended without a result"
        rep.record_failure(f"{host}: {reason}", host)
    return all(host in done for host in hosts)


def _stop(proc):
    """Stop pdsh and its subworkers. pdsh -R exec starts each subworker in its own session,
    so signalling pdsh's group would orphan them: freeze pdsh (no new host starts), end each
    subworker's group (it and its ssh), then pdsh."""
    try:
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    children = _children(proc.pid)
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for child in children:
            try:
                os.killpg(child, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_running(c) for c in children):
            time.sleep(0.1)
    proc.kill()
    proc.wait()


def _running(pid):
    """Alive and not a zombie waiting for its (frozen) parent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid):
    """Pids whose parent is PID (from /proc: no ps needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found
