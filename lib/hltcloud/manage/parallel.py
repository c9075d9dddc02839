"""--parallel: the per-host work of enable/disable through `pdsh -R exec`.

pdsh starts this same tool once a host (`... --line-output --subworker CMD %h`) with the
parent's token in the environment (cloud.handoff_env), so subworkers never authenticate
and no secret is on a command line. pdsh prefixes each line with the host; the parent
echoes the lines, collects the [FAIL] ones and pdsh's exit-code reports, and prints the
only summary.
"""
import os
import re
import subprocess
import sys
import threading

from hltcloud.manage.options import forwarded_switches
from hltcloud.cloud.credentials import SECRETS
from hltcloud.proc.runner import host_file, pdsh_exec_argv, start, stop_with_children

DONE_MARK = "[ OK ] Done on "  # a subworker's last line when its host succeeded
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


def run_through_pdsh(ctx, command, hosts):
    """Run COMMAND on HOSTS through pdsh; failures are recorded in ctx.rep. True if all ok."""
    with host_file(hosts) as path:
        argv = pdsh_exec_argv(path, [*worker_command(), "--line-output", "--subworker",
                                     *forwarded_switches(ctx.opts), command, "%h"],
                              ctx.opts.fanout)
        return _run_pdsh(ctx, argv, hosts)


def _start_pdsh(ctx, argv, hosts):
    """pdsh in its own process group (Ctrl-C reaches only us; we stop it), or None after
    recording that it cannot run."""
    try:
        return start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     env=worker_env(ctx.cloud))
    except OSError as err:
        for host in hosts:
            ctx.rep.record_failure(f"{host}: cannot run pdsh: {err.strerror}", host)
        ctx.rep.fail(f"--parallel needs pdsh: {err.strerror}")
        return None


def _run_pdsh(ctx, argv, hosts):
    rep = ctx.rep
    labels = label_map(hosts)
    failed, done, started, exit_codes = set(), set(), set(), {}
    proc = _start_pdsh(ctx, argv, hosts)
    if proc is None:
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
        stop_with_children(proc)
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
