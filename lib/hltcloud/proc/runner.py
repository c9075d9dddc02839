"""The one place that starts processes, locally or on nodes (ssh, pdsh, rsync, qemu-img).

Commands are argument lists, never shell strings built from host names or user values.
Remote commands (ssh sends one string to the remote shell) are joined with shlex.join, so
every word arrives as one word. In dry-run mode a mutating command is printed, quoted as a
shell would need it, instead of being run.

- run(): a short local command to completion; Ssh: how to reach nodes (options built once);
- start(), kill_group(), ProcessGroups, run_all(), stop_with_children(): long or many
  commands, each in its own process group, so that a stall or Ctrl-C ends a whole tree;
- watched(): a remote command that dies with our ssh; in_parallel(): work in threads.
"""
import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time

from hltcloud import filetrust, polling
from hltcloud.errors import UsageError
from hltcloud.proc.fanout import default_fanout, hosts_in
from hltcloud.validate import check_name

SSH_DEFAULT_TIMEOUT = 120  # seconds a whole ssh command may take
# Cheap ciphers (AES-NI or ChaCha20), no compression: every host of a pipelined chain
# decrypts and re-encrypts the whole file. Cheap key exchange: a run opens 2N-1 connections
# at once, and OpenSSH 9's default (sntrup761x25519) costs ~8x the CPU of curve25519 on the
# client alone.
FAST_SSH_OPTIONS = ["-o", "Ciphers=aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr",
                    "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org,"
                          "ecdh-sha2-nistp256,diffie-hellman-group14-sha256",
                    "-o", "Compression=no", "-o", "ForwardAgent=no", "-o", "ForwardX11=no"]


class Result:
    """How a command ended. ABORTED: it was killed (or never started) after Ctrl-C.

    A plain class, not a dataclass: every tool imports this module at start-up, and
    dataclasses (with inspect) would be most of its cost."""
    FIELDS = ("argv", "returncode", "stdout", "stderr", "timed_out", "dry_run", "aborted")

    def __init__(self, argv, returncode, stdout="", stderr="", timed_out=False, dry_run=False,
                 aborted=False):
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr
        self.timed_out, self.dry_run, self.aborted = timed_out, dry_run, aborted

    def __repr__(self):
        return f"Result({', '.join(f'{f}={getattr(self, f)!r}' for f in self.FIELDS)})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None  # as a dataclass with eq

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out and not self.aborted

    def reason(self):
        """One line saying why the command failed: the program, its status, its last line."""
        if self.timed_out:
            return f"{self.argv[0]} timed out"
        last = (self.stderr.strip() or self.stdout.strip()).splitlines()
        detail = last[-1] if last else "no output"
        return f"{os.path.basename(self.argv[0])} exited with {self.returncode}: {detail}"

    def cause(self, what):
        """One line saying why the step WHAT (transfer, verification, ...) failed: the line
        of ssh or rsync naming the cause, else the first line of output."""
        if self.aborted:
            return "interrupted"
        if self.timed_out:
            return f"{what} timed out"
        lines = [line.strip() for line in (self.stderr + "\n" + self.stdout).splitlines()
                 if line.strip()]
        # rsync's first "rsync:" line names the cause; its "rsync error:" line only the code.
        for line in lines:
            if line.startswith(("ssh:", "rsync:")) and not line.startswith("rsync error:"):
                return line
        if lines:
            return lines[0]
        return f"{what} exited with {self.returncode}"


def quoted(argv):
    """The command as one would type it into a shell."""
    return shlex.join(argv)


def run(argv, timeout=None, input_text=None, env=None):
    """Run ARGV, capture its output, kill it on timeout (or Ctrl-C, as subprocess.run does)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input_text, env=env,
                              stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return Result(list(argv), -1, _text(exc.stdout), _text(exc.stderr), timed_out=True)
    except FileNotFoundError:
        return Result(list(argv), 127, "", f"{argv[0]}: command not found")
    return Result(list(argv), proc.returncode, proc.stdout, proc.stderr)


def _text(data):
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def check_ssh_config(path):
    """--ssh-config must name an absolute path (ssh resolves relative ones surprisingly)."""
    if path and not os.path.isabs(path):
        raise UsageError(f"--ssh-config needs an absolute path: {path}")
    if path and not os.path.isfile(path):
        raise UsageError(f"--ssh-config file not found: {path}")
    if path:  # ssh checks only ~/.ssh/config itself, never a file given with -F
        filetrust.check_path(path, "ssh configuration")
    return path


def ssh_argv(options, host, remote):
    """The one ssh command line: OPTIONS (ours, from Ssh.options), then "--" (a host name can
    never be read as an option), HOST (checked) and REMOTE, the command string it runs."""
    return ["ssh", *options, "--", check_name(host, "host name"), remote]


class Ssh:
    """How to reach nodes: ssh options shared by ssh, pdsh and rsync."""

    def __init__(self, config_file="", user="root", connect_timeout=10):
        self.config_file = check_ssh_config(config_file)
        self.user = user
        self.connect_timeout = int(connect_timeout)

    def options(self, stall=None, keepalive=None, fast=False, config_file=None):
        """ssh options, without the program name. Host key checking stays as configured.

        STALL: seconds without progress before a transfer is abandoned: connecting takes at
        most that, and a keepalive every KEEPALIVE seconds (default STALL / 3), three missed,
        ends the connection. FAST: cheap ciphers and key exchange (FAST_SSH_OPTIONS).
        CONFIG_FILE: another ssh config path than ours (the one the nodes use)."""
        config_file = self.config_file if config_file is None else config_file
        opts = ["-F", config_file] if config_file else []
        if stall is None:
            opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        else:
            keepalive = max(1, stall // 3) if keepalive is None else keepalive
            opts += ["-o", "BatchMode=yes",
                     "-o", f"ConnectTimeout={max(1, min(self.connect_timeout, stall))}",
                     "-o", f"ServerAliveInterval={keepalive}", "-o", "ServerAliveCountMax=3"]
        if fast:
            opts += FAST_SSH_OPTIONS
        if self.user:
            opts += ["-l", self.user]
        return opts

    def argv(self, host, remote_argv):
        """ssh command line running REMOTE_ARGV on HOST."""
        return ssh_argv(self.options(), host, quoted(remote_argv))

    def rsh(self, stall=None):
        """The remote shell for rsync -e / pdsh: one string, made of our own options only."""
        return quoted(["ssh", *self.options(stall)])

    def run(self, host, remote_argv, timeout=SSH_DEFAULT_TIMEOUT, input_text=None):
        return run(self.argv(host, remote_argv), timeout=timeout, input_text=input_text)


def pdsh_exec_argv(host_file, command_argv, fanout=None):
    """pdsh -R exec over the hosts of HOST_FILE (see host_file()); %h in COMMAND_ARGV is
    replaced by pdsh with each host. A file, not `-w a,b,...`: one argument of the kernel
    holds at most 128 KiB, about 7,000 host names. FANOUT None: every host at once, as many
    as this head can hold (fanout.py)."""
    if fanout is None:
        fanout = default_fanout(hosts_in(host_file))
    if fanout < 1:
        raise UsageError(f"--fanout must be at least 1: {fanout}")
    return ["pdsh", "-R", "exec", "-f", str(fanout), "-w", f"^{host_file}", *command_argv]


@contextlib.contextmanager
def host_file(hosts):
    """HOSTS (validated names) one a line in a new file of a private (0700) directory; both
    are gone when the block ends."""
    import tempfile  # only here and in ProcessGroups.run: not at every start-up
    for host in hosts:
        check_name(host, "host name")
    with tempfile.TemporaryDirectory(prefix="hltcloud-") as private:
        path = os.path.join(private, "hosts")
        with open(path, "x", encoding="ascii") as handle:
            handle.write("".join(f"{host}\n" for host in hosts))
        yield path


def rsync_argv(source, dest, rsh=None, extra=()):
    """rsync; it writes a temporary file and renames it only when complete (its default)."""
    argv = ["rsync", "--whole-file"]
    if rsh:
        argv += ["-e", rsh]
    return [*argv, *extra, "--", source, dest]


# ---------------------------------------------------------------- process groups

def start(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
          **popen):
    """Start ARGV in a process group of its own (Ctrl-C reaches only us: we end it)."""
    return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                            start_new_session=True, **popen)


def kill_group(proc, grace=2.0):
    """End PROC's process group: SIGTERM, then SIGKILL if it is still there after GRACE."""
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


class ProcessGroups:
    """Every process a run starts, each in its own process group, so that a stall or Ctrl-C
    can kill a whole ssh/rsync tree; after abort(), run() starts nothing."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs = set()
        self.aborting = False

    def start(self, argv, **streams):
        """start() ARGV and keep it until abort() (a session that streams its output)."""
        with self._lock:
            proc = start(argv, **streams)
            self._procs.add(proc)
        return proc

    def run(self, argv, timeout, keep_stdin_open=False):
        """Run ARGV to completion or TIMEOUT -> Result. KEEP_STDIN_OPEN gives it a pipe that
        stays open until it ends (remote watchdogs kill their work when that pipe closes)."""
        import tempfile
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            with self._lock:
                if self.aborting:
                    return Result(list(argv), -1, "", "interrupted", aborted=True)
                try:
                    proc = start(argv, stdout=out, stderr=err,
                                 stdin=subprocess.PIPE if keep_stdin_open else subprocess.DEVNULL)
                except FileNotFoundError:
                    return Result(list(argv), 127, "", f"{argv[0]}: command not found")
                self._procs.add(proc)
            timed_out = False
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc)
            finally:
                if proc.stdin:
                    proc.stdin.close()
                with self._lock:
                    self._procs.discard(proc)
            out.seek(0)
            err.seek(0)
            return Result(list(argv), proc.returncode, out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"), timed_out=timed_out,
                          aborted=self.aborting)

    def abort(self, grace=2.0):
        """Stop starting processes and end every running one: all groups get SIGTERM at
        once, then each one that stays longer than GRACE gets SIGKILL."""
        with self._lock:
            self.aborting = True
            procs = list(self._procs)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in procs:
            if proc.poll() is None:
                kill_group(proc, grace)


def run_all(argvs, seconds, grace=1.0):
    """Run every command of ARGVS at once, output ignored, all of them ended after SECONDS
    (cleanups after Ctrl-C: bounded in time, whatever the nodes do)."""
    procs = []
    for argv in argvs:
        try:
            procs.append(start(argv))
        except OSError:
            break
    deadline = time.monotonic() + seconds
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc, grace)


def stop_with_children(proc):
    """Stop PROC (pdsh) and the processes it started. pdsh -R exec starts each one in its own
    session, so signalling pdsh's group would orphan them: freeze PROC (nothing new starts),
    end each child's group (it and its ssh), then PROC."""
    try:
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    from hltcloud.proc import procfs  # here: its dataclass would cost every start-up
    children = procfs.children(proc.pid)
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for child in children:
            try:
                os.killpg(child, sig)
            except (ProcessLookupError, PermissionError):
                pass
        polling.until(lambda: not any(procfs.running(c) for c in children), wait, most=0.1)
    proc.kill()
    proc.wait()


def in_parallel(items, work, fanout):
    """WORK(item) in up to FANOUT threads; returns {item: result}. KeyboardInterrupt reaches
    the caller (who aborts the processes the workers started)."""
    results, lock, slots = {}, threading.Lock(), threading.Semaphore(fanout)

    def one(item):
        with slots:
            value = work(item)
        with lock:
            results[item] = value

    threads = [threading.Thread(target=one, args=(item,), daemon=True) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
    return results


# ---------------------------------------------------------------- remote watchdog

def watched(script):
    """A remote command running the shell SCRIPT under watched_command()."""
    return watched_command(shlex.join(["sh", "-c", script]))


def watched_command(command):
    """A remote command running COMMAND (one shell command line), killed with everything it
    started (its whole process group) as soon as our ssh goes away: its stdin closes. Used
    for long remote work so that Ctrl-C or a timeout on the head leaves nothing running on
    the node."""
    # sh gives background jobs /dev/null as stdin: keep ours on fd 3 for the watchdog.
    return shlex.join(["sh", "-c", (
        f"exec 3<&0; {command} </dev/null 3<&- & p=$!; "
        f"(cat <&3 >/dev/null 2>&1; kill -TERM 0) >/dev/null 2>&1 & w=$!; "
        f"exec 3<&-; wait $p; r=$?; kill $w 2>/dev/null; exit $r")])
