"""Which of the configured OpenStack daemons run on each node: one ssh session a host, the
site's status command of each service (LSB: 0 running, 1 to 3 stopped, anything else
unknown), the hosts asked concurrently (at most --fanout at once, PROBE_FANOUT by default).

The remote script is made of validated service names only (config.py checks them), each
command an argument list joined with shlex; no host name is ever in it. What the node prints
is input: only our marked lines naming a configured service and a status number are read; a
service without one is unknown. A node that cannot be asked (ssh fails, times out) is
unreachable, with ssh's one-line reason: what runs there is never guessed.
"""
import re
import shlex

from hltcloud.manage.reconcile_plan import RUNNING, STOPPED, UNKNOWN, Node
from hltcloud.proc.runner import in_parallel

PROBE_TIMEOUT = 30  # seconds for one node's whole session (connecting has its own timeout)
PROBE_FANOUT = 32  # nodes asked at once unless --fanout says
MARK = "hltcloud-daemon-status"
_LINE = re.compile(rf"^{MARK} ([A-Za-z0-9][A-Za-z0-9._@-]*) (\d{{1,3}})$")


def remote_argv(config):
    """`sh -c '...'`: each service's status command, its output dropped, then one marked
    line with the service name and the command's exit status."""
    steps = [f"{shlex.join(config.service_command('status', service))} </dev/null >/dev/null "
             f"2>&1; echo {shlex.quote(MARK)} {shlex.quote(service)} $?"
             for service in config.services]
    return ["sh", "-c", "; ".join(steps)]


def state_of(code):
    """An LSB status exit code in words."""
    if code == 0:
        return RUNNING
    return STOPPED if code in (1, 2, 3) else UNKNOWN


def parse(services, stdout):
    """((service, state), ...) for SERVICES, from the node's STDOUT (unknown when unsaid)."""
    said = {}
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if match and match.group(1) in services:
            said.setdefault(match.group(1), state_of(int(match.group(2))))
    return tuple((service, said.get(service, UNKNOWN)) for service in services)


def probe_one(ctx, host):
    """HOST's Node."""
    result = ctx.ssh.run(host, remote_argv(ctx.config), timeout=PROBE_TIMEOUT)
    if not result.ok:  # the script itself ends with an echo: a failure is ssh's
        return Node(unreachable=result.cause("ssh"))
    return Node(parse(ctx.config.services, result.stdout))


def probe(ctx, hosts):
    """{host: Node} for HOSTS, asked concurrently."""
    if not hosts:
        return {}
    fanout = min(len(hosts), ctx.opts.fanout or PROBE_FANOUT)
    return in_parallel(list(hosts), lambda host: probe_one(ctx, host), fanout)
