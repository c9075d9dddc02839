"""Command line of openstack-prefill-cache: parse, then prefill.prefill_hosts() (or, with --check,
prefill_check.check_hosts()). Bad input: one line, exit 2, nothing sent."""
import argparse
import sys
from dataclasses import dataclass

from hltcloud import hostlist
from hltcloud.prefill import run as prefill
from hltcloud.prefill import check as prefill_check
from hltcloud.prefill.prune import DEFAULT_MIN_AGE_HOURS, MAX_MIN_AGE_HOURS, prune_hosts
from hltcloud.ops import rerun
from hltcloud.proc import runner
from hltcloud.errors import run_main
from hltcloud.inputs import OneLineParser, whole_number
from hltcloud.report import Reporter
from hltcloud.transfer.common import DEFAULT_TRIES
from hltcloud.transfer.options import TransferOptions, add_exclude, add_switch
from hltcloud.validate import check_name

USAGE = ("openstack-prefill-cache [--ssh-config FILE] [--dry-run] [--no-colors] "
         "[--line-output] [--tries N] [--timeout S] [--wave] [--check [--json]] "
         "[--config FILE] [--os-cloud NAME] [--failed-hosts FILE] [--ok-hosts FILE] "
         "[--no-syslog] IMAGE HOSTS...\n"
         "       openstack-prefill-cache --prune [--keep IMAGE]... [--min-age HOURS] "
         "[--dry-run] [switches] HOSTS...")
PROG = "openstack-prefill-cache"
MIN_AGE = whole_number(0, MAX_MIN_AGE_HOURS, " of hours")


def build_parser():
    parser = OneLineParser(
        prog=PROG, usage=USAGE,
        description="Put a Glance image into Nova's raw image cache on every host.")
    add_switch(parser, "--ssh-config")
    add_switch(parser, "--dry-run", help="look up and check, print the plan, change nothing")
    add_switch(parser, "--no-colors")
    add_switch(parser, "--line-output")
    # None: not given (--check refuses it); the default is set after parsing.
    add_switch(parser, "--tries", default=None,
               help=f"transfers tried per host (default {DEFAULT_TRIES})")
    add_switch(parser, "--timeout")
    parser.add_argument("--wave", action="store_true",
                        help="transfer in rsync waves instead of pipelined chains")
    parser.add_argument("--check", action="store_true",
                        help="change nothing: tell per host whether its cached copy is good "
                             "(raw, the image's virtual size, image_owner's, not purged by "
                             "Nova); exit 0 when every host's is")
    parser.add_argument("--json", action="store_true",
                        help="with --check: the hosts as a JSON list on standard output "
                             "(messages on standard error)")
    add_exclude(parser)
    add_switch(parser, "--config")
    parser.add_argument("--os-cloud", metavar="NAME", default=None,
                        help="the clouds.yaml entry to use (default $OS_CLOUD, else the OS_* "
                             "variables)")
    parser.add_argument("--prune", action="store_true",
                        help="no IMAGE: remove from each host's image cache the images no "
                             "server there uses (nor --keep names), older than --min-age, "
                             "and the leftovers of interrupted prefills")
    parser.add_argument("--keep", metavar="IMAGE", action="append", default=[],
                        help="with --prune: keep this image (name or id; again for more)")
    parser.add_argument("--min-age", metavar="HOURS", type=MIN_AGE, default=None,
                        help=f"with --prune: only what is older (default "
                             f"{DEFAULT_MIN_AGE_HOURS})")
    rerun.add_switches(parser)
    add_switch(parser, "--no-syslog")
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("hosts", metavar="HOSTS", nargs="*")
    return parser


@dataclass(frozen=True, kw_only=True)
class PrefillOptions(TransferOptions):
    """openstack-prefill-cache's command line, built once by parse(), then only read."""
    image: str
    wave: bool = False
    check: bool = False
    json: bool = False
    os_cloud: str = None
    prune: bool = False
    keep: tuple = ()
    min_age: int = DEFAULT_MIN_AGE_HOURS


def parse(argv, parser=None):
    """The command line as a frozen PrefillOptions, its combinations checked: --check
    transfers and changes nothing, so --dry-run, --wave and --tries would be silently
    meaningless with it: refused."""
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if args.prune:
        args = _prune_args(parser, args)
    elif args.keep or args.min_age is not None:
        parser.error("--keep and --min-age go with --prune")
    elif not args.hosts:
        parser.error("the following arguments are required: HOSTS")
    if args.json and not args.check:
        parser.error("--json needs --check")
    if args.check:
        useless = [switch for switch, given in (("--dry-run", args.dry_run),
                                                ("--wave", args.wave),
                                                ("--tries", args.tries is not None)) if given]
        if useless:
            parser.error(f"--check changes and transfers nothing: {', '.join(useless)} "
                         "cannot go with it")
    rerun.check_paths(args)
    hosts = [check_name(host, "host name")
             for host in hostlist.excluding(hostlist.expand(*args.hosts), args.exclude)]
    if not hosts:
        raise prefill.PrefillError("no hosts given")
    if not args.prune and not args.image.strip():
        raise prefill.PrefillError("IMAGE must be a name or an id, not empty")
    return PrefillOptions.from_args(
        parser, argv, args, hosts, tries=DEFAULT_TRIES if args.tries is None else args.tries,
        keep=tuple(args.keep), min_age=args.min_age or DEFAULT_MIN_AGE_HOURS)


def _prune_args(parser, args):
    """--prune takes no IMAGE: every word is a host; what only a prefill uses is refused."""
    useless = [switch for switch, given in (("--check", args.check), ("--wave", args.wave),
                                            ("--tries", args.tries is not None)) if given]
    if useless:
        parser.error(f"--prune transfers nothing: {', '.join(useless)} cannot go with it")
    for ref in args.keep:
        if not ref.strip():
            parser.error("--keep IMAGE must be a name or an id, not empty")
    return argparse.Namespace(**{**vars(args), "hosts": [args.image, *args.hosts],
                                 "image": ""})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    groups = runner.ProcessGroups()  # every process of the run: Ctrl-C ends them all

    def body():
        opts = parse(argv)
        # --json: the data alone on standard output, every message on standard error
        reporter = Reporter(stream=sys.stderr if opts.json else None, no_colors=opts.no_colors,
                            line_output=opts.line_output)
        tools = prefill.Tools(reporter, groups,
                              rerun.HostLists(PROG, opts.argv, opts.host_span, opts,
                                              save=not (opts.dry_run or opts.check),
                                              drop=("--check", "--json") if opts.check else ()))
        if opts.check:
            return prefill_check.check_hosts(opts, tools)
        if opts.prune:
            return prune_hosts(opts, tools)
        return prefill.prefill_hosts(opts, tools)
    return run_main(PROG, body, on_interrupt=groups.abort)
