"""openstack-enter [ROLE] [-- COMMAND...]: a shell, or one command, in a role's OS_* environment.

Exit status: the shell's or the command's; 2 bad usage or input (switches, role name,
configuration, no credentials for the role); 4 credentials refused (unsafe owner,
permissions, link or file type, or content that is not plain assignments); 126 the command
or shell cannot be run, 127 it is not found.
"""
import os
import re
import shlex
import sys
from dataclasses import dataclass

from hltcloud.enter import credentials
from hltcloud.enter import shell as enter_shell
from hltcloud.config import ConfigError, load
from hltcloud.inputs import OneLineParser
from hltcloud.errors import UsageError
from hltcloud.validate import BadValue

PROG = "openstack-enter"
EXIT_USAGE, EXIT_REFUSED, EXIT_CANNOT_RUN, EXIT_NOT_FOUND = 2, 4, 126, 127
DEFAULT_ROLE = "admin"
BANNER = "[OpenStack]"
# The banner ends up in PS1: nothing a shell expands there (\ $ ` ! %), no spaces, no controls.
_NOT_PROMPT_SAFE = re.compile(r"[^A-Za-z0-9._@:+=,-]")
_MAX_SHOWN = 64
# Left out of the role's environment: the caller's own cloud and a --parallel token.
_DROPPED = ("HLTCLOUD_AUTH",)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = parse(argv)
        creds = credentials.load(load(opts.config).credentials_dir, opts.role)
    except credentials.CredentialsRefused as err:  # bad input too, with a status of its own
        print(f"{PROG}: refused: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except (UsageError, ConfigError, BadValue, credentials.UnknownRole) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    env = role_environment(os.environ, creds)
    program = opts.command[0] if opts.command else enter_shell.choose(env)
    try:
        if opts.command:
            _exec(list(opts.command), env)  # returns only on failure
        return enter_shell.run_shell(program, env, banner(creds))
    except OSError as err:
        print(f"{PROG}: cannot run {program}: {err.strerror}", file=sys.stderr)
        return EXIT_NOT_FOUND if isinstance(err, FileNotFoundError) else EXIT_CANNOT_RUN


@dataclass(frozen=True)
class EnterOptions:
    """The command line, built once by parse(), then only read."""
    role: str
    config: str = None
    command: tuple = ()  # the words after the first --; () for a shell


def parse(argv):
    """The command line as an EnterOptions; everything after the first -- is the command."""
    command = ()
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
        if not command:
            raise UsageError("no COMMAND after --")
    parser = OneLineParser(
        prog=PROG, usage=f"{PROG} [--config FILE] [ROLE] [-- COMMAND...]",
        description="Start a shell (or run COMMAND) with the OpenStack credentials of ROLE "
                    "from the site's root-only credentials directory; the prompt shows "
                    f"{BANNER} USER@PROJECT. See openstack-enter(1).")
    parser.add_argument("role", nargs="?", default=DEFAULT_ROLE,
                        help=f"a role of the credentials directory (default {DEFAULT_ROLE})")
    parser.add_argument("--config", metavar="FILE",
                        help="site configuration (default $HLTCLOUD_CONFIG, /etc/hltcloud.conf)")
    argv, stray = _split_stray_command(argv)
    opts = parser.parse_args(argv)
    if stray:
        raise UsageError(f"unexpected {shlex.join(stray)!r} after the role: a command goes "
                         f"after -- ({PROG} {opts.role} -- {shlex.join(stray)})")
    return EnterOptions(**vars(opts), command=tuple(command))


def _split_stray_command(argv):
    """(ARGV up to the word after the role, that word and the rest): a command written
    without -- before it, which argparse would call unrecognized arguments."""
    positional, index = 0, 0
    while index < len(argv):
        if argv[index] == "--config":
            index += 2
            continue
        if not argv[index].startswith("-"):
            positional += 1
            if positional == 2:
                return argv[:index], argv[index:]
        index += 1
    return argv, []


def role_environment(base, creds):
    """BASE without any OS_* variable (no leftover of another cloud mixes in), plus the
    role's variables and HLTCLOUD_ROLE, which tells nested shells where they are."""
    env = {k: v for k, v in base.items() if not k.startswith("OS_") and k not in _DROPPED}
    env.update(creds.env)
    env["HLTCLOUD_ROLE"] = creds.role
    return env


def prompt_safe(text):
    """TEXT with every character a shell could expand in a prompt replaced by '?'."""
    shown = _NOT_PROMPT_SAFE.sub("?", text[:_MAX_SHOWN])
    return shown + ("..." if len(text) > _MAX_SHOWN else "") if shown else "-"


def banner(creds):
    return f"{BANNER} {prompt_safe(creds.user)}@{prompt_safe(creds.project)}"


def _exec(command, env):
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)  # PATH searched in ENV, as env(1) does
