"""How many VMs of one flavor fit: pure arithmetic on Placement and quota figures.

Placement's capacity of a resource class is (total - reserved) * allocation_ratio; a VM
needs its amount of every class of the flavor, and no single request may exceed max_unit.
"""
import math


def flavor_needs(vcpus, ram_mb, disk_gb, ephemeral_gb=0, swap_mb=0):
    """The resources Nova claims in Placement for one VM of the flavor (zero amounts left out)."""
    needs = {"VCPU": vcpus, "MEMORY_MB": ram_mb,
             "DISK_GB": disk_gb + ephemeral_gb + math.ceil(swap_mb / 1024)}
    return {rc: amount for rc, amount in needs.items() if amount > 0}


def capacity(inventory):
    return (inventory["total"] - inventory.get("reserved", 0)) * inventory.get("allocation_ratio", 1.0)


def fit_on_host(inventories, usages, needs):
    """VMs of NEEDS that fit one resource provider now (0 if a class is missing or too small)."""
    count = None
    for rc, amount in needs.items():
        inventory = inventories.get(rc)
        if not inventory or amount > inventory.get("max_unit", amount):
            return 0
        free = capacity(inventory) - usages.get(rc, 0)
        n = max(0, int(math.floor(free / amount + 1e-9)))
        count = n if count is None else min(count, n)
    return count or 0


def fit_empty_host(inventories, needs):
    return fit_on_host(inventories, {}, needs)


def quota_fit(absolute, vcpus, ram_mb):
    """VMs the project may still start, from Nova's absolute limits (None: unlimited).

    ABSOLUTE holds maxTotalInstances/totalInstancesUsed, maxTotalCores/totalCoresUsed,
    maxTotalRAMSize/totalRAMUsed; a negative maximum means unlimited.
    """
    limits = []
    for max_key, used_key, amount in (("maxTotalInstances", "totalInstancesUsed", 1),
                                      ("maxTotalCores", "totalCoresUsed", vcpus),
                                      ("maxTotalRAMSize", "totalRAMUsed", ram_mb)):
        maximum = absolute.get(max_key)
        if maximum is None or maximum < 0 or amount <= 0:
            continue
        limits.append(max(0, (maximum - absolute.get(used_key, 0)) // amount))
    return min(limits) if limits else None


def how_many(host_fits, quota, upper_bound=None):
    """The count to boot in one request: cluster fit, capped by quota and --count."""
    count = sum(host_fits)
    for cap in (quota, upper_bound):
        if cap is not None:
            count = min(count, cap)
    return count
