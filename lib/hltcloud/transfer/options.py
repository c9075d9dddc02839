"""The switches rsync-wave.py and openstack-prefill-cache share, defined once, the ssh
settings built from them and the site configuration, and rsync-wave.py's command line as
a frozen value."""
from dataclasses import dataclass

from hltcloud.ops import rerun
from hltcloud.proc import runner
from hltcloud.inputs import whole_number
from hltcloud.transfer.common import DEFAULT_TIMEOUT, DEFAULT_TRIES

# Command line bounds: far above any real use, low enough that no value exhausts memory
# (--head-slots builds lists that long) or hands rsync an absurd --timeout.
TRIES = whole_number(1, 100)
SECONDS = whole_number(1, 86_400, " of seconds")

SWITCHES = {
    "--ssh-config": dict(metavar="FILE", default=None,
                         help="ssh configuration (absolute path), also used by the nodes"),
    "--tries": dict(type=TRIES, default=DEFAULT_TRIES, metavar="N",
                    help="transfers tried per host (default %(default)s)"),
    "--timeout": dict(type=SECONDS, default=DEFAULT_TIMEOUT, metavar="S",
                      help="seconds without progress before a transfer is abandoned "
                           "(default %(default)s)"),
    "--dry-run": dict(action="store_true"),
    "--no-colors": dict(action="store_true"),
    "--line-output": dict(action="store_true"),
    "--no-syslog": dict(action="store_true", help="no record of the run in the system log"),
    "--config": dict(metavar="FILE", default=None,
                     help="site configuration (default $HLTCLOUD_CONFIG or /etc/hltcloud.conf)"),
}


def add_exclude(parser):
    """-x HOSTS, --exclude HOSTS: hosts left out of the run (again for more), as clush and
    pdsh take them."""
    parser.add_argument("-x", "--exclude", action="append", default=[], metavar="HOSTS",
                        help="leave out these hosts (the host list syntax; again for more)")


def add_switch(parser, name, **changes):
    """Add the shared switch NAME to PARSER (CHANGES: what differs for this tool, as the
    help of --dry-run); each tool adds them in the order its --help shows."""
    parser.add_argument(name, **{**SWITCHES[name], **changes})


def make_ssh(args, cfg):
    """The ssh settings: --ssh-config, else the site's; its user and connect timeout."""
    return runner.Ssh(args.ssh_config if args.ssh_config is not None else cfg.ssh_config,
                      cfg.ssh_user, cfg.connect_timeout)


@dataclass(frozen=True, kw_only=True)
class TransferOptions:
    """A transfer tool's command line, built once by its CLI (from_args), then only read:
    the switches above, and its hosts."""
    hosts: tuple  # the names, expanded and checked, in order, without duplicates
    exclude: tuple = ()  # -x: the words of the hosts left out
    # For the record and the re-run line (rerun.py): the arguments, the host list words,
    # where they are.
    argv: tuple
    host_words: tuple
    host_span: tuple
    ssh_config: str = None
    tries: int = DEFAULT_TRIES
    timeout: int = DEFAULT_TIMEOUT
    dry_run: bool = False
    no_colors: bool = False
    line_output: bool = False
    config: str = None
    failed_path: str = None
    ok_path: str = None
    no_syslog: bool = False

    @classmethod
    def from_args(cls, parser, argv, args, hosts, **values):
        """The value of ARGS (PARSER's parse of ARGV), with the expanded HOSTS and VALUES
        in place of what parsing left (a default set afterwards)."""
        return cls(**{**vars(args), "hosts": tuple(hosts), "exclude": tuple(args.exclude),
                      "argv": tuple(argv),
                      "host_words": tuple(args.hosts),
                      "host_span": rerun.words_span(parser, argv, args), **values})


@dataclass(frozen=True, kw_only=True)
class WaveOptions(TransferOptions):
    """rsync-wave.py's command line."""
    source: str
    dest: str
    head_slots: int = 1
    pipeline: bool = False
