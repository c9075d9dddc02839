"""Command line of openstack-prefill-cache: parse, then prefill.run(). Bad input: one line,
exit 2, nothing sent."""
import sys

from . import prefill, rerun, runner
from .errors import run_main
from .inputs import OneLineParser
from .report import Reporter
from .transfer_cli import add_switch

USAGE = ("openstack-prefill-cache [--ssh-config FILE] [--dry-run] [--no-colors] "
         "[--line-output] [--tries N] [--timeout S] [--wave] [--config FILE] "
         "[--os-cloud NAME] [--failed-hosts FILE] [--ok-hosts FILE] [--no-syslog] IMAGE HOSTS...")
PROG = "openstack-prefill-cache"


def build_parser():
    parser = OneLineParser(
        prog=PROG, usage=USAGE,
        description="Put a Glance image into Nova's raw image cache on every host.")
    add_switch(parser, "--ssh-config")
    add_switch(parser, "--dry-run", help="look up and check, print the plan, change nothing")
    add_switch(parser, "--no-colors")
    add_switch(parser, "--line-output")
    add_switch(parser, "--tries")
    add_switch(parser, "--timeout")
    parser.add_argument("--wave", action="store_true",
                        help="transfer in rsync waves instead of pipelined chains")
    add_switch(parser, "--config")
    parser.add_argument("--os-cloud", metavar="NAME", default=None,
                        help="the clouds.yaml entry to use (default $OS_CLOUD, else the OS_* "
                             "variables)")
    rerun.add_switches(parser)
    add_switch(parser, "--no-syslog")
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("hosts", metavar="HOSTS", nargs="+")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    groups = runner.ProcessGroups()  # every process of the run: Ctrl-C ends them all

    def body():
        parser = build_parser()
        args = parser.parse_args(argv)
        rerun.check_paths(args)
        args.argv = argv  # the record in the system log, and the re-run line:
        args.lists = rerun.HostLists(PROG, argv, rerun.words_span(parser, argv, args), args)
        reporter = Reporter(no_colors=args.no_colors, line_output=args.line_output)
        return prefill.run(args, reporter, groups)
    return run_main(PROG, body, on_interrupt=groups.abort)
