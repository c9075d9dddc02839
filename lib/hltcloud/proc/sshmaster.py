"""One ssh connection to a host for its whole enable or disable: an OpenSSH ControlMaster.

start() launches `ssh -N` with ControlMaster and ControlPersist in the background: its
handshake overlaps the host's first API requests; once connected it leaves the master
behind and exits 0. run() waits for it, then runs the command as a session multiplexed
over the master (`-S socket`); close() ends the master (`ssh -O exit`) and removes its
directory, also after a failure or Ctrl-C. ControlPersist is the safety net: a master whose
run died without closing it ends by itself after IDLE seconds without a session.

The control socket lives in a new private (0700) directory of $TMPDIR, or of /tmp when
that path is too long for a socket (or $TMPDIR is writable by others without the sticky
bit); removed at the end. Host key checking and the operator's ssh config apply as for
plain ssh (Ssh.options).

Whenever there is no master (no usable directory, an ssh that refuses it, a master that
died), a session is a plain ssh, as without a master. An unreachable host (the launcher
could not connect) fails its first session with the launcher's own error at once, not
after a second ConnectTimeout.
"""
import os
import re
import signal
import stat
import subprocess
import time

from hltcloud import polling
from hltcloud.proc import procfs, runner
from hltcloud.validate import check_name

IDLE = 60  # ControlPersist: seconds a master stays without sessions before ending itself
EXIT_WAIT = 3.0  # seconds for `ssh -O exit` and for the master to remove its socket
# sun_path holds 104 bytes on BSD (108 on Linux); ssh first binds "<path>.<16 random>".
MAX_SOCKET_PATH = 104 - 1 - 17
_PLAIN = re.compile(r"/[A-Za-z0-9._/-]*\Z")  # no ssh %-tokens, no spaces
# ssh's own lines for a host it could not reach: a second try would only wait again.
_UNREACHABLE = ("ssh: connect to host ", "ssh: Could not resolve hostname ")
# A multiplexed session that failed because of the master, not of the remote command.
_MUX_TROUBLE = ("mux_client", "master", "Control socket", "ControlSocket")


def _safe_parent(path):
    """PATH can hold our directory: short, plain, a real directory that only its owner
    (us or root) can write to, or sticky (/tmp)."""
    if len(path) + len("/hltcloud-ssh-XXXXXXXX/s") > MAX_SOCKET_PATH or not _PLAIN.match(path):
        return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, os.geteuid()):
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or bool(info.st_mode & stat.S_ISVTX)


def private_dir():
    """A new 0700 directory for a control socket ($TMPDIR, else /tmp), or None."""
    import tempfile  # only for real runs: not at every start-up
    for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        if _safe_parent(parent):
            try:
                return tempfile.mkdtemp(prefix="hltcloud-ssh-", dir=parent)
            except OSError:
                continue
    return None


class Master:
    """The connection to HOST: start() once, run() any number of sessions, close() once."""

    def __init__(self, ssh, host):
        self.ssh, self.host = ssh, check_name(host, "host name")
        self.dir = self.socket = None
        self.launcher = None  # the connecting ssh, until it has exited
        self.up = False  # a master is there to multiplex over

    def argv(self, *words):
        """ssh with our options and this master's socket: WORDS end it (before `--`)."""
        return ["ssh", *self.ssh.options(), "-S", self.socket, *words]

    def start(self):
        """Connect in the background; without a private directory, stay plain ssh."""
        try:
            self.dir = private_dir()
            if self.dir is None:
                return
            self.socket = os.path.join(self.dir, "s")
            with open(os.path.join(self.dir, "err"), "xb") as err:
                self.launcher = runner.start(self._launch_argv(), stderr=err)
        except OSError:
            self.close()

    def _launch_argv(self):
        alive = max(1, self.ssh.connect_timeout)
        return self.argv("-o", "ControlMaster=yes", "-o", f"ControlPersist={IDLE}",
                         "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=3",
                         "-N", "--", self.host)

    def run(self, host, remote_argv, timeout=runner.SSH_DEFAULT_TIMEOUT):
        """Like Ssh.run: REMOTE_ARGV on HOST (ours) -> Result, within TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        failed = self.connected(timeout)
        if failed is not None:
            return failed
        if self.up:
            result = runner.run([*self.argv("-o", "ControlMaster=no", "--", host),
                                 runner.quoted(remote_argv)],
                                timeout=max(1, deadline - time.monotonic()))
            if result.ok or not self._mux_trouble(result):
                return result
            self.up = False  # the master is unusable: plain ssh from now on
        return self.ssh.run(host, remote_argv, timeout=max(1, deadline - time.monotonic()))

    def connected(self, timeout):
        """Wait for the launcher. None: go on (self.up says how); a Result: the host is
        unreachable or the connection never came within TIMEOUT (today's failures)."""
        launcher = self.launcher
        if launcher is None:
            return None
        try:
            code = launcher.wait(timeout)  # Ctrl-C here: close() still ends the launcher
        except subprocess.TimeoutExpired:
            self.launcher = None
            runner.kill_group(launcher)
            return runner.Result(launcher.args, -1, timed_out=True)
        self.launcher = None
        self.up = code == 0
        if self.up:
            return None
        try:
            with open(os.path.join(self.dir, "err"), encoding="utf-8", errors="replace") as err:
                error = err.read()
        except OSError:
            error = ""
        if code == 255 and any(line.startswith(_UNREACHABLE) for line in error.splitlines()):
            return runner.Result(launcher.args, code, "", error)
        return None  # e.g. an ssh that refuses the master: plain ssh

    def _mux_trouble(self, result):
        return result.returncode == 255 and any(
            word in line for line in result.stderr.splitlines() for word in _MUX_TROUBLE)

    def close(self):
        """End the launcher and the master, remove the directory; quick, never raises.
        Ctrl-C and SIGTERM wait until it is done (they are delivered right after)."""
        signals = {signal.SIGINT, signal.SIGTERM}
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            self._close()
        except OSError:
            pass
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _close(self):
        launcher, self.launcher, self.up = self.launcher, None, False
        if launcher is not None and launcher.poll() is None:
            runner.kill_group(launcher, grace=1.0)  # a master it left is ended below
        if self.socket and os.path.lexists(self.socket):
            runner.run(self.argv("-O", "exit", "--", self.host), timeout=EXIT_WAIT)
            # the master removes its socket as it exits
            if not polling.until(lambda: not os.path.lexists(self.socket), EXIT_WAIT, most=0.01):
                _terminate(self.dir)  # a master that does not answer
        if self.dir:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = self.socket = None


def _terminate(directory):
    """SIGTERM every ssh of ours whose command line names DIRECTORY (made for one master)."""
    mark = directory.encode()
    for found in procfs.processes():
        if found.argv and found.argv[0].endswith(b"ssh") and found.uid == os.geteuid() \
                and any(mark in word for word in found.argv):
            try:
                os.kill(found.pid, signal.SIGTERM)
            except OSError:
                pass  # gone meanwhile
