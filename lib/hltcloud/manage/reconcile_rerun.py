"""The re-run line of a failed enable or disable (issue 21): a host Nova already lists as the
command wanted (disabled after a disable, enabled after an enable) is re-run with
`reconcile`, which finds where it was left and finishes the same steps; a host whose flag
still says otherwise (the Nova request itself failed, unknown host, not started) keeps the
command's own re-run line (rerun.py).

The reconcile line carries the switches of the run that reconcile takes, --for-real
included (the operator ran for real: the line finishes that run). It leaves out --reason
(reconcile does not take it: the host is disabled already, with its reason) and the list
files (--failed-hosts and --ok-hosts: the re-run would overwrite them).
"""
from hltcloud.manage.options import DEFAULT_VM_TIMEOUT, switches

# (dest, flag, takes a value): what reconcile keeps of the failed run's command line
KEPT = (("for_real", "--for-real", False), ("no_colors", "--no-colors", False),
        ("line_output", "--line-output", False), ("parallel", "--parallel", False),
        ("fanout", "--fanout", True), ("vm_timeout", "--vm-timeout", True),
        ("force_shutoff", "--force-shutoff", False),
        ("ssh_config", "--ssh-config", True), ("config", "--config", True),
        ("os_cloud", "--os-cloud", True), ("no_syslog", "--no-syslog", False))


def reconcile_argv(opts):
    """The reconcile command line (no program, no hosts) of the run OPTS (--vm-timeout only
    when not the default)."""
    kept = [row for row in KEPT
            if row[0] != "vm_timeout" or opts.vm_timeout != DEFAULT_VM_TIMEOUT]
    return [*switches(opts, kept), "reconcile"]


def route(opts):
    """For enable and disable: failed outcomes -> (the hosts Nova lists as the command
    wanted, the reconcile argv, where its hosts go); None for the other commands."""
    wanted = {"enable": "enabled", "disable": "disabled"}.get(opts.command)
    if wanted is None:
        return None

    def reroute(failed):
        hosts = [outcome.host for outcome in failed if outcome.state.nova == wanted]
        argv = reconcile_argv(opts)
        return hosts, argv, (len(argv), len(argv))
    return reroute
