"""What the two transfer engines (wave.py, pipeline.py) share: their bad-input error and
checks, the source file prepared for copying (size and checksum, the tool that verifies it on
a node, the hidden twin it is written to), per-host results, and the transfer lines and
figures they print. It imports neither engine; broadcast.py composes them."""
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field

from hltcloud.validate import BadValue, check_name, path_fault
from hltcloud.errors import UsageError
from hltcloud.ops.outcomes import FAILED, Outcome

DEFAULT_TRIES = 3
DEFAULT_TIMEOUT = 60
# The checksum tool that verifies a copy on a node, by algorithm.
CHECKSUM_TOOLS = {"sha1": "sha1sum", "md5": "md5sum", "sha256": "sha256sum", "sha512": "sha512sum"}


class TransferError(UsageError):
    """Bad input for a transfer: reported in one line, exit 2, nothing copied."""


# ---------------------------------------------------------------- checks

def check_dest(dest):
    """DEST must be an absolute file path made of letters, digits and . _ + - / only
    (it is put into remote shell strings, quoted, and rsync arguments)."""
    fault = path_fault(dest, empty_parts=False)
    if fault == "characters" or dest.endswith("/"):
        raise TransferError(f"DEST must be an absolute file path (letters, digits, . _ + - /): {dest!r}")
    if fault:
        raise TransferError(f"DEST must be a plain absolute file path: {dest!r}")
    return dest


def check_node_path(path, what):
    """PATH (WHAT: a path the nodes use, as the nodes' ssh config) must be absolute and made
    of letters, digits and . _ + - / only."""
    if path_fault(path) == "characters":
        raise TransferError(f"{what} must be an absolute path (letters, digits, . _ + - /): {path!r}")
    return path


def check_request(dest, hosts, seeds=()):
    """DEST checked; HOSTS and SEEDS without duplicates, every name checked."""
    hosts = list(dict.fromkeys(hosts))
    seeds = list(dict.fromkeys(seeds))
    check_dest(dest)
    try:
        for host in hosts + seeds:
            check_name(host, "host name")
    except BadValue as err:
        raise TransferError(str(err)) from None
    return hosts, seeds


def check_bounds(tries=None, head_slots=None, timeout=None):
    """The given ones of --tries, --head-slots and --timeout are at least 1."""
    if tries is not None and tries < 1:
        raise TransferError(f"--tries must be at least 1: {tries}")
    if head_slots is not None and head_slots < 1:
        raise TransferError(f"--head-slots must be at least 1: {head_slots}")
    if timeout is not None and timeout < 1:
        raise TransferError(f"--timeout must be at least 1 second: {timeout}")


# ---------------------------------------------------------------- the copy

def file_checksum(path, algorithm="sha1", chunk=1 << 20):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_source(source):
    if not os.path.isfile(source):
        raise TransferError(f"SOURCE is not a readable file: {source}")


def prepare_copy(source, checksum=None):
    """SOURCE (a local file) -> (size, checksum): CHECKSUM is an (algorithm, hexdigest) pair
    the hosts verify, computed (sha1) from SOURCE when None."""
    check_source(source)
    size = os.path.getsize(source)
    if checksum is None:
        checksum = ("sha1", file_checksum(source, "sha1"))
    if checksum[0] not in CHECKSUM_TOOLS or not re.fullmatch(r"[0-9a-f]+", checksum[1]):
        raise TransferError(f"unsupported checksum: {checksum!r}")
    return size, checksum


def hidden_twin(dest, kind, token=None):
    """A hidden name beside DEST (same directory: the final rename is atomic), as
    /dir/.name.KIND-TOKEN; TOKEN is random unless given."""
    head, base = os.path.split(dest)
    return os.path.join(head, f".{base}.{kind}-{token or secrets.token_hex(4)}")


# ---------------------------------------------------------------- results

@dataclass
class HostResult:
    """A host's transfer as the engine follows it; outcome() is what it came to."""
    host: str
    ok: bool = False
    source: str = ""  # who delivered the file ("seed" when it already held it)
    reason: str = ""  # why the last attempt failed ("" when ok)
    bytes: int = 0  # bytes delivered (0 for a seed)
    elapsed: float = 0.0  # seconds of the successful transfer, verification included
    tries: int = 0  # transfers towards this host that counted against --tries

    def outcome(self):
        """The host's Outcome (ops/outcomes.py): ok when it has the file, else failed for
        the reason of its last attempt (a node's words: made printable when shown)."""
        if self.ok:
            return Outcome(self.host)
        return Outcome(self.host, FAILED, self.reason)


@dataclass
class TransferResult:
    hosts: dict  # name -> HostResult, in the order given
    size: int
    elapsed: float
    transfers: list = field(default_factory=list)  # (source, target, ok, reason, seconds)
    broken_sources: list = field(default_factory=list)
    checksum: tuple = None  # (algorithm, hexdigest) the hosts verified

    @property
    def ok(self):
        return all(result.ok for result in self.hosts.values())

    def failed(self):
        return [name for name, result in self.hosts.items() if not result.ok]

    def delivered(self):
        return [name for name, result in self.hosts.items() if result.ok]

    def outcomes(self):
        """Every host's Outcome, in the order given."""
        return [result.outcome() for result in self.hosts.values()]


# ---------------------------------------------------------------- printing

def format_rate(nbytes, seconds):
    rate = nbytes / max(seconds, 1e-6)
    if rate >= 1e9:
        return f"{rate / 1e9:.2f} GB/s"
    if rate >= 1e6:
        return f"{rate / 1e6:.1f} MB/s"
    return f"{rate / 1e3:.1f} kB/s"


def format_size(nbytes):
    return f"{nbytes / 1e6:.0f}MB" if nbytes >= 1e6 else f"{nbytes}B"


def say_delivered(reporter, source, target, size, seconds):
    """The line of a transfer that worked: "[ OK ] SOURCE --> TARGET (rate)"."""
    reporter.delivered(f"{source} --> {target} ({format_rate(size, seconds)})")


def say_closing(reporter, size, elapsed):
    reporter.info(f"file size: {format_size(size)}")
    reporter.info(f"elapsed time: {elapsed:.2f}s")
