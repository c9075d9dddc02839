"""Start and stop a node's OpenStack daemons over ssh, with the site's service commands.

One ssh session an action: the commands run in order and stop at the first failure.
Services start in reverse configured order (libvirtd first) and stop in configured order.
connection() makes one ssh connection to the host for the block (the host's whole enable or
disable, sshmaster.Master): its sessions run over it.
"""
import contextlib
import shlex

from hltcloud.proc import sshmaster


DAEMON_TIMEOUT = 120  # seconds for all the start/stop commands of one host


def remote_argv(config, action):
    """`sh -c 'cmd1 && cmd2 ...'`: one remote command made of validated service names only."""
    services = config.services if action == "stop" else tuple(reversed(config.services))
    script = " && ".join(shlex.join(config.service_command(action, s)) for s in services)
    return ["sh", "-c", script]


@contextlib.contextmanager
def connection(ctx, host):
    """The block's sessions to HOST go over one ssh connection, started now in the
    background and ended with the block, whatever happens (none in a dry run)."""
    if ctx.dry:
        yield
        return
    master = sshmaster.Master(ctx.ssh, host)
    ctx.connections[host] = master
    try:
        master.start()
        yield
    finally:
        del ctx.connections[host]
        master.close()


def start_or_stop(ctx, now, action):
    """Start or stop the daemons on the host of NOW (its outcome so far): the outcome after
    it, the daemons running or stopped, or failed (shown). A dry run only shows it."""
    host = now.host
    what = {"start": "Starting", "stop": "Shutting down"}[action]
    message = f"{what} OpenStack daemons on {host}"
    remote = remote_argv(ctx.config, action)
    if ctx.dry:  # what the node would run, not the quoting of the ssh line around it
        ctx.rep.dry(f"{message}: {remote[-1]}")
        return now
    via = ctx.connections.get(host, ctx.ssh)  # the host's connection, else plain ssh
    result = via.run(host, remote, timeout=DAEMON_TIMEOUT)
    if result.ok:
        ctx.rep.ok(message)
        return now.then(daemons="running" if action == "start" else "stopped")
    reason = f"{message}: {result.reason()}"
    ctx.rep.show_fail(reason)
    return now.failed(reason)
