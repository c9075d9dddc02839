"""The two transfer engines composed: the wave (wave.py) or pipelined chains (chain/)
whose missing hosts the wave completes, seeded by the hosts that got the file; the choice
between them and the dry-run plan of either. Used by rsync-wave.py and
openstack-prefill-cache."""
import socket
import time

from hltcloud.transfer import chain
from hltcloud.transfer import wave
from hltcloud.transfer.common import DEFAULT_TIMEOUT, DEFAULT_TRIES, say_closing


def pipelined(source, dest, hosts, ssh, reporter, *, tries=DEFAULT_TRIES, head_slots=1,
              timeout=DEFAULT_TIMEOUT, checksum=None, head_name=None, node_ssh_config=None,
              progress_interval=None):
    """Copy SOURCE to DEST on every host of HOSTS through pipelined chains, then complete the
    hosts that missed it with the wave from those that got it. Returns a TransferResult;
    raises TransferError on bad input, KeyboardInterrupt after cleaning up."""
    head_name = head_name or socket.gethostname()
    chains = chain.distribute(source, dest, hosts, ssh, reporter, head_slots=head_slots,
                                 timeout=timeout, checksum=checksum, head_name=head_name,
                                 node_ssh_config=node_ssh_config,
                                 progress_interval=progress_interval)
    started = time.monotonic() - chains.elapsed
    missing = chains.failed()
    if not missing:
        say_closing(reporter, chains.size, time.monotonic() - started)
        chains.elapsed = time.monotonic() - started
        return chains
    seeds = chains.delivered()
    reporter.info(f"completing {len(missing)} host(s) with the wave "
                  f"from {len(seeds)} host(s) that have the file")
    rest = wave.distribute(source, dest, missing, ssh, reporter, tries=tries,
                           head_slots=head_slots, timeout=timeout, seeds=seeds,
                           checksum=chains.checksum, head_name=head_name)
    for host in missing:
        again = rest.hosts[host]
        if not again.ok:
            again.reason = again.reason or chains.hosts[host].reason
        chains.hosts[host] = again
    chains.transfers += rest.transfers
    reporter.info(f"total elapsed time: {time.monotonic() - started:.2f}s")
    chains.elapsed = time.monotonic() - started
    return chains


def engine(pipelined_chains):
    """(plan, print_plan, distribute) of a transfer mode: pipelined chains (completed by the
    wave) or the wave alone."""
    if pipelined_chains:
        return chain.plan_chains, chain.print_plan, pipelined
    return wave.plan_rounds, wave.print_plan, wave.distribute


def print_dry_run(source, hosts, reporter, pipelined_chains, head_slots=1):
    """The plan of a transfer of SOURCE to HOSTS, nothing copied."""
    plan, show_plan, _ = engine(pipelined_chains)
    reporter.info(f"transferring {source} to {len(hosts)} host(s) "
                  "(dry run: the plan, nothing is copied)")
    show_plan(plan(hosts, head_slots), reporter, socket.gethostname())
