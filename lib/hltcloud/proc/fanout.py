"""How many hosts a --parallel run works on at once when no --fanout is given.

A host's disable is mostly waiting (for Nova's deletes, 10 s to a minute on a real compute,
and for its daemons), so hosts run in rounds of FANOUT cost a whole wait each: pdsh's own
default of 32 takes 13 rounds for a farm of 400. The default is every host of the run at
once, bounded by what the head can hold, as measured (bench/bench_manage.py farm): each host
costs the head one subworker (a Python process, its ssh master, a short ssh session client,
a pdsh thread), and pdsh holds file descriptors for it.

bound() is pure (a table of inputs tests it); head_limits() reads this machine.
"""
import resource

HARD_CAP = 512  # hosts at once at most by default: a farm is some hundreds
# Per subworker, measured with 100 at once (bench_manage.py farm, 2026-12-06): 15 MiB of
# private memory (its Python 14, its ssh master 1.3) and 3 tasks (those two, a pdsh thread),
# one or two more while a session runs. Taken twice over: it grows with the answers it reads.
SUBWORKER_BYTES = 32 << 20
SUBWORKER_TASKS = 5
MEMORY_SHARE = 0.75  # of MemAvailable, at twice the measured size: at most 3/8 of it used
TASK_SHARE = 0.5  # of RLIMIT_NPROC: the user's other processes count against it too
PDSH_FDS_PER_HOST = 4  # pdsh -R exec: two socket pairs a host (measured: 1024 fds, 266 hosts)
PDSH_FDS_SPARE = 64


def bound(hosts, mem_available=None, nproc=None, nofile=None):
    """Hosts at once for HOSTS hosts: all of them, at most HARD_CAP, and no more than
    MEM_AVAILABLE bytes, NPROC tasks (RLIMIT_NPROC) and NOFILE descriptors (RLIMIT_NOFILE,
    which pdsh inherits) can hold; None: no such limit. At least 1."""
    limits = [hosts, HARD_CAP]
    if mem_available is not None:
        limits.append(int(mem_available * MEMORY_SHARE) // SUBWORKER_BYTES)
    if nproc is not None:
        limits.append(int(nproc * TASK_SHARE) // SUBWORKER_TASKS)
    if nofile is not None:
        limits.append((nofile - PDSH_FDS_SPARE) // PDSH_FDS_PER_HOST)
    return max(1, min(limits))


def head_limits():
    """(MemAvailable bytes, soft RLIMIT_NPROC, soft RLIMIT_NOFILE) of this process; None for
    what is unlimited or cannot be read."""
    def soft(which):
        limit = resource.getrlimit(which)[0]
        return None if limit == resource.RLIM_INFINITY else limit
    return _mem_available(), soft(resource.RLIMIT_NPROC), soft(resource.RLIMIT_NOFILE)


def _mem_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_fanout(hosts):
    """The fanout for HOSTS hosts on this head."""
    return bound(hosts, *head_limits())


def hosts_in(host_file):
    """How many hosts a host file (one a line) names."""
    with open(host_file, encoding="ascii") as handle:
        return sum(1 for line in handle if line.strip())
