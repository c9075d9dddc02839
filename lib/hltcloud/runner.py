"""Wrappers for ssh, pdsh, rsync and qemu-img.

Commands are argument lists, never shell strings built from host names or user values.
Remote commands (ssh sends one string to the remote shell) are joined with shlex.join, so
every word arrives as one word. In dry-run mode a mutating command is printed, quoted as a
shell would need it, instead of being run.
"""
import contextlib
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass

from .validate import check_name

SSH_DEFAULT_TIMEOUT = 120  # seconds a whole ssh command may take


class UsageError(ValueError):
    """Bad switch value: reported in one line, exit 2, nothing done."""


@dataclass
class Result:
    argv: list
    returncode: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    dry_run: bool = False

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def reason(self):
        """One line saying why the command failed."""
        if self.timed_out:
            return f"{self.argv[0]} timed out"
        last = (self.stderr.strip() or self.stdout.strip()).splitlines()
        detail = last[-1] if last else "no output"
        return f"{os.path.basename(self.argv[0])} exited with {self.returncode}: {detail}"


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
    return path


class Ssh:
    """How to reach nodes: ssh options shared by ssh, pdsh and rsync."""

    def __init__(self, config_file="", user="root", connect_timeout=10):
        self.config_file = check_ssh_config(config_file)
        self.user = user
        self.connect_timeout = int(connect_timeout)

    def options(self):
        """ssh options, without the program name. Host key checking stays as configured."""
        opts = []
        if self.config_file:
            opts += ["-F", self.config_file]
        opts += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.user:
            opts += ["-l", self.user]
        return opts

    def argv(self, host, remote_argv):
        """ssh command line running REMOTE_ARGV on HOST."""
        check_name(host, "host name")
        # "--" first: a host name can never be read as an option.
        return ["ssh", *self.options(), "--", host, quoted(remote_argv)]

    def rsh(self):
        """The remote shell for rsync -e / pdsh: one string, made of our own options only."""
        return quoted(["ssh", *self.options()])

    def run(self, host, remote_argv, timeout=SSH_DEFAULT_TIMEOUT, input_text=None):
        return run(self.argv(host, remote_argv), timeout=timeout, input_text=input_text)


def pdsh_exec_argv(host_file, command_argv, fanout=32):
    """pdsh -R exec over the hosts of HOST_FILE (see host_file()); %h in COMMAND_ARGV is
    replaced by pdsh with each host. A file, not `-w a,b,...`: one argument of the kernel
    holds at most 128 KiB, about 7,000 host names."""
    if fanout < 1:
        raise UsageError(f"--fanout must be at least 1: {fanout}")
    return ["pdsh", "-R", "exec", "-f", str(fanout), "-w", f"^{host_file}", *command_argv]


@contextlib.contextmanager
def host_file(hosts):
    """HOSTS (validated names) one a line in a new file of a private (0700) directory; both
    are gone when the block ends."""
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


def qemu_img_convert_argv(source, dest, output_format="raw"):
    return ["qemu-img", "convert", "-O", output_format, source, dest]
