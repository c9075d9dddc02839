"""The plan of a pipelined run (pure): the hosts cut into chains of consecutive hosts, and
the dry run's lines of who sends to whom."""
from hltcloud.transfer.common import check_bounds


def plan_chains(hosts, head_slots=1):
    """Cut HOSTS (in order) into HEAD_SLOTS chains of consecutive hosts, as even as possible;
    never more chains than hosts."""
    check_bounds(head_slots=head_slots)
    hosts = list(dict.fromkeys(hosts))
    count = min(head_slots, len(hosts))
    chains, start = [], 0
    for index in range(count):
        length = len(hosts) // count + (1 if index < len(hosts) % count else 0)
        chains.append(hosts[start:start + length])
        start += length
    return chains


def print_plan(chains, reporter, head_name):
    """--dry-run: who sends to whom, chain by chain (the wave's plan lines)."""
    for number, chain in enumerate(chains, 1):
        reporter.info(f"chain {number}:")
        for upstream, host in zip([head_name, *chain], chain):
            reporter.dry(f"{upstream} --> {host}")
    total = sum(len(chain) for chain in chains)
    reporter.info(f"{total} host(s) in {len(chains)} pipelined chain(s)")
