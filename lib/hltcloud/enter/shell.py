"""The interactive shell of openstack-enter, with the banner in its prompt.

bash gets `--rcfile` naming a startup file that sources ~/.bashrc (as bash itself would)
and then puts the banner before PS1. Every other shell is treated as a POSIX sh (dash):
PS1 in its environment already carries the banner, and ENV names a startup file that
sources the operator's own $ENV and puts the banner back if that file changed PS1. The
startup files hold no secret (the credentials reach the shell only through execve's
environment); they live in a private (0700) directory that is removed when the shell,
run as our child, exits.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile

FALLBACK = "/bin/sh"
HANGUP_GRACE = 2  # seconds a hung-up shell has to exit before it is told again, then killed
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/-]*\Z")  # safe inside ENV, which sh expands


def choose(env):
    """$SHELL when it is an absolute path to an executable file, else /bin/sh."""
    shell = env.get("SHELL", "")
    if os.path.isabs(shell) and os.path.isfile(shell) and os.access(shell, os.X_OK):
        return shell
    return FALLBACK


def run_shell(shell, env, banner):
    """Run SHELL interactively in ENV with BANNER before its prompt; its exit status."""
    tmp = tempfile.mkdtemp(prefix="hltcloud-enter-")
    if not _PLAIN_PATH.match(tmp):  # odd $TMPDIR: sh would expand ENV=...
        os.rmdir(tmp)
        tmp = tempfile.mkdtemp(prefix="hltcloud-enter-", dir="/tmp")
    try:
        if os.path.basename(shell) == "bash":
            argv, env = _bash(shell, tmp, env, banner)
        else:
            argv, env = _posix_sh(shell, tmp, env, banner)
        return _wait(argv, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _set_banner(banner):
    """sh code (bash and dash alike) putting BANNER before PS1, replacing the banner of an
    outer openstack-enter (the sanitised banner holds exactly one space)."""
    tag = shlex.quote(banner.split(" ", 1)[0] + " ")
    return (f"case $PS1 in {tag}*) PS1=${{PS1#{tag}*' '}} ;; esac\n"
            f"PS1={shlex.quote(banner + ' ')}\"$PS1\"\n")


def _bash(shell, tmp, env, banner):
    rcfile = os.path.join(tmp, "bashrc")
    _write(rcfile, "# openstack-enter: the usual startup file, then the banner\n"
                   "if [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n" + _set_banner(banner))
    return [shell, "--rcfile", rcfile, "-i"], env


def _posix_sh(shell, tmp, env, banner):
    rcfile = os.path.join(tmp, "shrc")
    own = env.get("ENV")
    if own is None:
        lines = "unset ENV\n"
    else:  # restored for nested shells; our file is gone once this shell ends
        path = shlex.quote(os.path.expandvars(own))
        lines = (f"ENV={shlex.quote(own)}; export ENV\n"
                 f"if [ -r {path} ]; then . {path}; fi\n")
    _write(rcfile, "# openstack-enter: the usual $ENV, then the banner\n" + lines
           + _set_banner(banner))
    usual = "# " if os.geteuid() == 0 else "$ "
    return [shell, "-i"], {**env, "ENV": rcfile, "PS1": f"{banner} {usual}"}


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _wait(argv, env):
    """Run ARGV as our child and wait for it; 128+N when signal N killed it.

    Our handlers are in place before the child starts: a signal in between must neither
    kill us (leaving the directory behind) nor get lost. A hung-up shell that stays (bash
    can miss a SIGHUP that comes while it sets up its prompt) gets it again, then SIGKILL,
    HANGUP_GRACE seconds apart."""
    child, hung_up, escalation = [], [], [signal.SIGHUP, signal.SIGKILL]

    def tell(sig):
        if child:
            child[0].send_signal(sig)  # a no-op once the child is reaped
            signal.setitimer(signal.ITIMER_REAL, HANGUP_GRACE)

    def hang_up(_signum, _frame):  # we outlive the shell, so its directory is removed
        hung_up.append(True)
        tell(signal.SIGHUP)  # an interactive shell ignores SIGTERM

    def again(_signum, _frame):
        tell(escalation.pop(0) if len(escalation) > 1 else escalation[0])

    # The terminal's Ctrl-C and Ctrl-\ are for the shell, not for us.
    saved = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, signal.SIG_IGN), (signal.SIGQUIT, signal.SIG_IGN),
        (signal.SIGTERM, hang_up), (signal.SIGHUP, hang_up), (signal.SIGALRM, again))}
    try:
        child.append(subprocess.Popen(argv, env=env, preexec_fn=_default_interrupts))
        if hung_up:  # before the child existed
            tell(signal.SIGHUP)
        status = child[0].wait()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def _default_interrupts():
    """In the child before exec: an ignored signal would stay ignored in the shell and in
    every command it runs (Ctrl-C would stop nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
