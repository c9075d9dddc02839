"""Command line of openstack-hlt-manage: switches before or after the command and HOSTS;
`COMMAND --help` shows that command's switches.

Bad input raises UsageError (one line, exit 2) before anything touches the cloud or a node.
"""
import argparse

from hltcloud.hostlist import HostListError, expand
from hltcloud.inputs import OneLineParser, whole_number
from hltcloud.ops.rerun import add_switches, check_paths
from hltcloud.errors import UsageError
from hltcloud.proc.runner import check_ssh_config
from hltcloud.validate import BadValue, check_name

PROG = "openstack-hlt-manage"
COMMANDS = ("enable", "disable", "status", "runvms", "listwns", "vmstats", "reconcile")
HOST_COMMANDS = ("enable", "disable")  # need HOSTS
LISTING_COMMANDS = ("status", "listwns", "vmstats", "reconcile")  # print data: -f, -c
FORMATS = ("table", "json", "value", "csv")  # as listing.FORMATS (not imported: --help stays light)
DEFAULT_VM_TIMEOUT = 300
DEFAULT_FANOUT = None  # every host at once, as many as the head holds (hltcloud.proc.fanout)

USAGE = ("usage: openstack-hlt-manage [--for-real] [--no-colors] [--line-output] [--parallel] "
         "[--fanout N] [--vm-timeout SECONDS] [--drain SECONDS] [--reason TEXT] [--force-shutoff] [--ssh-config FILE] [--nvms] "
         "[--long] [--json] [-f FORMAT] [-c COLUMN]... [-x HOSTS] [--config FILE] [--os-cloud NAME] [--flavor F] [--image I] [--key-name K] [--user-data FILE] "
         "[--name PREFIX] [--count N] [--failed-hosts FILE] [--ok-hosts FILE] [--no-syslog] "
         "enable|disable|status|runvms|listwns|vmstats|reconcile [HOSTS...]")

# Switches forwarded unchanged to --parallel subworkers: (dest, flag, takes a value).
FORWARDED = (("for_real", "--for-real", False), ("no_colors", "--no-colors", False),
             ("vm_timeout", "--vm-timeout", True), ("force_shutoff", "--force-shutoff", False),
             ("ssh_config", "--ssh-config", True), ("config", "--config", True),
             ("no_syslog", "--no-syslog", False), ("reason", "--reason", True))


# Upper bounds: far above any real use, low enough that no value exhausts memory or time.
MAX_FANOUT = 1024
MAX_VM_TIMEOUT = 86_400  # a day
MAX_DRAIN = 7 * 86_400  # a week: a take-back planned from the LHC schedule
MAX_COUNT = 100_000
MAX_REASON = 128  # characters: Nova keeps 255, with "user@head 2026-12-06T03:00Z: " before it

_fanout = whole_number(1, MAX_FANOUT)
_seconds = whole_number(0, MAX_VM_TIMEOUT, " of seconds")
_drain = whole_number(0, MAX_DRAIN, " of seconds")
_count = whole_number(1, MAX_COUNT)


def _reason(text):
    """--reason TEXT: one line of printable characters, at most MAX_REASON of them."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must say something")
    if not text.isprintable():
        raise argparse.ArgumentTypeError(f"must be one line of printable characters: {text!r}")
    if len(text) > MAX_REASON:
        raise argparse.ArgumentTypeError(f"{len(text)} characters, more than {MAX_REASON}")
    return text


ACTING = ("enable", "disable", "runvms", "reconcile")  # change something: --for-real
ONE_BY_ONE = ("enable", "disable")  # per host, through pdsh with --parallel
PER_HOST = ONE_BY_ONE + ("reconcile",)  # reconcile hands its hosts to enable and disable


def parser(command=None):
    """The parser of every switch, or (COMMAND) of those COMMAND takes, for its --help."""
    p = OneLineParser(prog=PROG if command is None else f"{PROG} {command}",
                      usage=USAGE[len("usage: "):] if command is None else None, add_help=True,
                      description="Add hypervisors to the HLT cloud and take them back.")

    def add(*flags, only=COMMANDS, **kwargs):
        if command is None or command in only:
            p.add_argument(*flags, **kwargs)

    add("--for-real", action="store_true", only=ACTING, help="act (default: dry run)")
    add("--no-colors", action="store_true", help="no colors (also: NO_COLOR set)")
    add("--line-output", action="store_true", help="one whole line a message")
    add("--parallel", action="store_true", only=PER_HOST,
        help="per-host work through pdsh -R exec")
    add("--fanout", type=_fanout, default=DEFAULT_FANOUT, metavar="N", only=PER_HOST,
        help="hosts at once with --parallel (default: all, as many as the head holds); "
             "reconcile: also the nodes asked at once (default 32)")
    _add_disable_switches(add)
    add("--ssh-config", default=None, metavar="FILE", only=PER_HOST,
        help="ssh -F FILE (absolute path)")
    add("--nvms", action="store_true", only=("status",), help="status: VM counts and addresses")
    add("--long", action="store_true", only=("status",),
        help="status: also forced down, reason, since, #VMs")
    add("--json", action="store_true", only=LISTING_COMMANDS,
        help="status/listwns/vmstats/reconcile as JSON (-f json)")
    add("-f", "--format", choices=FORMATS, default=None, metavar="FORMAT", only=LISTING_COMMANDS,
        help=f"status/listwns/vmstats/reconcile: {'|'.join(FORMATS)} (default table)")
    add("-c", "--column", dest="columns", action="append", default=[], metavar="COLUMN",
        only=LISTING_COMMANDS,
        help="status/listwns/vmstats/reconcile: only this column (again for more; its JSON key "
             "or its heading)")
    add("-x", "--exclude", action="append", default=[], metavar="HOSTS",
        only=ONE_BY_ONE + LISTING_COMMANDS,
        help="leave out these hosts (the host list syntax; again for more)")
    add("--config", default=None, metavar="FILE",
        help="site configuration (default $HLTCLOUD_CONFIG, /etc/hltcloud.conf)")
    add("--os-cloud", metavar="NAME", default=None,
        help="the clouds.yaml entry to use (default $OS_CLOUD, else the OS_* variables)")
    _add_runvms_switches(add)
    if command is None or command in PER_HOST:
        add_switches(p)  # --failed-hosts FILE, --ok-hosts FILE: enable, disable, reconcile
    add("--no-syslog", action="store_true", only=ACTING,
        help="no record of a --for-real run in the system log")
    # A --parallel parent starts us with this: no summary, the parent prints the only one.
    add("--subworker", action="store_true", only=ONE_BY_ONE, help=argparse.SUPPRESS)
    # ... and this when it has disabled the hosts and sent their deletes (takeback.py).
    add("--prepared", action="store_true", only=("disable",), help=argparse.SUPPRESS)
    if command is None:
        p.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    p.add_argument("hosts", nargs="*", metavar="HOSTS",
                   help="host names, pdsh-style ranges (cn[43-45].internal), @list files")
    return p


def _add_disable_switches(add):
    """How disable takes a host back (--vm-timeout: reconcile's too)."""
    add("--vm-timeout", type=_seconds, default=DEFAULT_VM_TIMEOUT, metavar="SECONDS",
        only=("disable", "reconcile"),
        help=f"disable, reconcile: how long to wait for the VMs to go; reconcile: a VM deleting "
             f"longer is stuck (default {DEFAULT_VM_TIMEOUT})")
    add("--drain", metavar="SECONDS", type=_drain, only=("disable",),
        help="disable: first wait up to SECONDS for the VMs to end on their own")
    add("--reason", metavar="TEXT", type=_reason, only=("disable",),
        help="disable: why, in Nova's disabled reason (after who and when)")
    add("--force-shutoff", action="store_true", only=("disable", "reconcile"),
        help="disable (and reconcile's disable steps): stop the daemons even if VMs remain at "
             "the timeout")


def _add_runvms_switches(add):
    """What runvms boots (the site's [runvms] keys by default); listwns looks for --name,
    vmstats counts room for --flavor."""
    runvms_too = ("runvms", "listwns", "vmstats")
    add("--flavor", metavar="F", only=runvms_too, help="runvms: flavor (site default)")
    add("--image", metavar="I", only=("runvms",), help="runvms: image name or id (site default)")
    add("--key-name", metavar="K", only=("runvms",), help="runvms: key pair (site default)")
    add("--user-data", metavar="FILE", only=("runvms",),
        help="runvms: user data file (site default)")
    add("--name", metavar="PREFIX", only=runvms_too, help="runvms: VM name prefix (site default)")
    add("--count", type=_count, metavar="N", only=("runvms",), help="runvms: boot at most N VMs")


def command_help(argv):
    """The --help of the command ARGV names (None when it names none): its switches only."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    command = next((word for word in words if word in COMMANDS), None)
    return None if command is None else parser(command).format_help()


def parse(argv):
    """The command line as a frozen ManageOptions: .hosts expanded (full names, order kept,
    no duplicates), the arguments and host list words kept for the re-run line."""
    args = parser().parse_intermixed_args(argv)  # switches before or after the command
    if args.command in HOST_COMMANDS and not args.hosts:
        raise UsageError(f"{args.command} needs HOSTS")
    if args.command == "runvms" and args.hosts:
        raise UsageError("runvms takes no HOSTS: it fills every enabled, up hypervisor")
    if args.command not in PER_HOST and (args.failed_path or args.ok_path):
        raise UsageError(f"--failed-hosts and --ok-hosts are for enable, disable and reconcile, "
                         f"not {args.command}")
    _check_output_switches(args)
    check_paths(args)
    if args.ssh_config:
        check_ssh_config(args.ssh_config)
    words = args.hosts
    from hltcloud.manage.parsed import ManageOptions  # only once the command line is good
    fmt = "json" if args.json else args.format or "table"
    excluded = _expanded(args.exclude)
    return ManageOptions(**{**vars(args), "hosts": tuple(_expanded(words, excluded)),
                            "exclude": tuple(excluded),
                            "argv": tuple(argv), "host_words": tuple(words),
                            "host_span": (len(argv) - len(words), len(argv)),
                            "format": fmt, "json": fmt == "json",
                            "columns": tuple(args.columns)})


def _check_output_switches(args):
    """-f, -c, --json and --long are for the commands that print data, and agree."""
    given = [name for name, value in (("--format", args.format), ("--column", args.columns),
                                      ("--json", args.json)) if value]
    if given and args.command not in LISTING_COMMANDS:
        raise UsageError(f"{given[0]} is for {', '.join(LISTING_COMMANDS)}, not {args.command}")
    if args.exclude and args.command == "runvms":
        raise UsageError("--exclude is not for runvms: it fills every enabled, up hypervisor")
    if args.reason is not None and args.command != "disable":
        raise UsageError(f"--reason is for disable, not {args.command}")
    if args.drain is not None and args.command != "disable":
        raise UsageError(f"--drain is for disable, not {args.command}")
    if args.prepared and not args.subworker:
        raise UsageError("--prepared is for the subworkers of a --parallel disable")
    if args.long and args.command != "status":
        raise UsageError(f"--long is for status, not {args.command}")
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} disagree")


def _expanded(words, excluded=()):
    """The host names of WORDS (none for none), without those EXCLUDED."""
    if not words:
        return []
    try:
        hosts = [check_name(host, "host name") for host in expand(*words)]
    except (HostListError, BadValue) as err:
        raise UsageError(str(err)) from None
    if not hosts:  # e.g. an empty @file: "nothing to do" would look like success
        raise UsageError(f"no hosts in {' '.join(map(repr, words))}")
    left = [host for host in hosts if host not in set(excluded)]
    if not left:
        raise UsageError(f"no hosts left after --exclude (of {' '.join(map(repr, words))})")
    return left


def forwarded_switches(opts):
    """The switches a --parallel parent passes on to each subworker."""
    return switches(opts, FORWARDED)


def switches(opts, table):
    """The command line words of OPTS' switches in TABLE ((dest, flag, takes a value), ...)."""
    argv = []
    for dest, flag, has_value in table:
        value = getattr(opts, dest)
        if has_value and value is not None:
            argv += [flag, str(value)]
        elif not has_value and value:
            argv.append(flag)
    return argv
