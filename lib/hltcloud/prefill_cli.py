"""Command line of openstack-prefill-cache: parse, then prefill.run(). Bad input: one line,
exit 2, nothing sent."""
from . import prefill, runner
from .errors import run_main
from .inputs import OneLineParser
from .report import Reporter
from .transfer_cli import add_switch

USAGE = ("openstack-prefill-cache [--ssh-config FILE] [--dry-run] [--no-colors] "
         "[--line-output] [--tries N] [--timeout S] [--wave] [--config FILE] "
         "[--os-cloud NAME] IMAGE HOSTS...")


def build_parser():
    parser = OneLineParser(
        prog="openstack-prefill-cache", usage=USAGE,
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
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("hosts", metavar="HOSTS", nargs="+")
    return parser


def main(argv=None):
    groups = runner.ProcessGroups()  # every process of the run: Ctrl-C ends them all

    def body():
        args = build_parser().parse_args(argv)
        reporter = Reporter(no_colors=args.no_colors, line_output=args.line_output)
        return prefill.run(args, reporter, groups)
    return run_main("openstack-prefill-cache", body, on_interrupt=groups.abort)
