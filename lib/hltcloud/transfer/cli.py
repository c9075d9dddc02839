"""Command line of rsync-wave.py: parse, check, then the wave or the pipelined chains
(broadcast.py), and the closing summary. Bad input: one line, exit 2, nothing copied."""
import sys

from hltcloud.ops import audit
from hltcloud.transfer import broadcast
from hltcloud import config
from hltcloud import hostlist
from hltcloud import inputs
from hltcloud.ops import rerun
from hltcloud.errors import FAILED, OK, run_main
from hltcloud.printable import printable
from hltcloud.report import Reporter, dry_end
from hltcloud.transfer.common import TransferError, check_dest, check_node_path
from hltcloud.ops.outcomes import INTERRUPTED, Outcome
from hltcloud.transfer.options import WaveOptions, add_exclude, add_switch, make_ssh
from hltcloud.validate import check_name

USAGE = ("rsync-wave.py [--ssh-config FILE] [--tries N] [--head-slots K] [--timeout S] "
         "[--pipeline] [--dry-run] [--no-colors] [--line-output] [--config FILE]\n"
         "                    [--failed-hosts FILE] [--ok-hosts FILE] [--no-syslog]\n"
         "                    SOURCE DEST HOSTS...")
PROG = "rsync-wave.py"
HEAD_SLOTS = inputs.whole_number(1, 1024)


def build_parser():
    parser = inputs.OneLineParser(
        prog=PROG, usage=USAGE,
        description="Copy SOURCE to DEST on every host; every host that has it becomes a source.")
    add_switch(parser, "--ssh-config")
    add_switch(parser, "--tries")
    parser.add_argument("--head-slots", type=HEAD_SLOTS, default=1, metavar="K",
                        help="transfers the head runs at once (default 1)")
    add_switch(parser, "--timeout")
    add_switch(parser, "--dry-run", help="print the plan, copy nothing")
    parser.add_argument("--pipeline", action="store_true",
                        help="pipelined chains (hltcloud.transfer.chain), the wave completing what they miss")
    add_switch(parser, "--no-colors")
    add_switch(parser, "--line-output")
    add_exclude(parser)
    add_switch(parser, "--config")
    rerun.add_switches(parser)
    add_switch(parser, "--no-syslog")
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("dest", metavar="DEST")
    parser.add_argument("hosts", metavar="HOSTS", nargs="+")
    return parser


def expand_hosts(words):
    """Host list words (pdsh-style lists, @files) -> names, in order, without duplicates."""
    names = hostlist.expand(*words)
    if not names:
        raise TransferError("no hosts given")
    return names


def local_source(path):
    """SOURCE checked and spelled for rsync: a regular file we can open; a relative name with
    a colon before any '/' would be taken by rsync as HOST:PATH, so it gets a './'."""
    try:
        inputs.check_regular_file(path, "SOURCE")
    except inputs.InputError as err:
        raise TransferError(f"SOURCE is not a readable file: {path!r} ({err.reason})") from None
    if ":" in path.split("/", 1)[0]:
        return "./" + path
    return path


def print_summary(result, reporter):
    """The closing lines, from the hosts' outcomes; returns True when every host got the file."""
    reporter.write_line("")
    outcomes = result.outcomes()
    missing = [outcome for outcome in outcomes if not outcome.ok]
    if not missing:
        reporter.write_line(reporter.paint("ok", f"All {len(outcomes)} host(s) have the file."))
        return True
    # the words of the other tools' summaries: one style for every tool
    reporter.write_line(reporter.paint(
        "fail", f"Failed on {len(missing)} host(s): "
                f"{hostlist.fold([outcome.host for outcome in missing])}"))
    for outcome in missing:
        reporter.write_line(f"  {outcome.host}: {printable(outcome.reason)}")  # a node's words
    return False


def parse(argv):
    """The command line as a frozen WaveOptions, its hosts expanded and checked."""
    parser = build_parser()
    args = parser.parse_args(argv)
    rerun.check_paths(args)
    hosts = [check_name(host, "host name")
             for host in hostlist.excluding(expand_hosts(args.hosts), args.exclude)]
    return WaveOptions.from_args(parser, argv, args, hosts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_main(PROG, lambda: copy_to_hosts(argv))


def copy_to_hosts(argv):
    opts = parse(argv)
    # The dry run checks exactly what the real run does, before printing anything.
    cfg = config.load(opts.config)
    ssh = make_ssh(opts, cfg)
    check_dest(opts.dest)
    if opts.pipeline and ssh.config_file:
        check_node_path(ssh.config_file, "the nodes' ssh config")
    source = local_source(opts.source)
    lists = rerun.HostLists(PROG, opts.argv, opts.host_span, opts, save=not opts.dry_run)
    if opts.dry_run:  # the lists too (every host planned is "ok"); no record in the log
        reporter = Reporter(no_colors=opts.no_colors, line_output=opts.line_output)
        broadcast.print_dry_run(source, opts.hosts, reporter, opts.pipeline, opts.head_slots)
        reporter.write_line(dry_end())
        return OK if lists.finish(reporter, [Outcome(host) for host in opts.hosts]) else FAILED
    reporter = Reporter(no_colors=opts.no_colors, line_output=opts.line_output,
                        record=audit.start(PROG, argv, cfg, enabled=not opts.no_syslog))
    _, _, transfer = broadcast.engine(opts.pipeline)
    try:
        result = transfer(source, opts.dest, list(opts.hosts), ssh, reporter, tries=opts.tries,
                          head_slots=opts.head_slots, timeout=opts.timeout)
    except KeyboardInterrupt:  # the engine has stopped everything: no host counts as done
        lists.finish(reporter, [Outcome(host, INTERRUPTED, "interrupted") for host in opts.hosts])
        raise
    ok = print_summary(result, reporter)
    written = lists.finish(reporter, result.outcomes())
    return OK if ok and written else FAILED
