"""The hypervisor names `status` last saw, for tab completion (completion/hltcloud.bash).

$HLTCLOUD_CACHE_DIR/hosts (default /var/cache/hltcloud/hosts), one name a line, in a private
directory (privatedir.py). Only a convenience: a directory that cannot be used or trusted
is skipped without a word, and `status` works the same. Only names that pass the host-name
rule are stored (the caller checked them already; a cache is never the place they enter).
"""
import os

from hltcloud.hostlist import HostListError, check_host
from hltcloud.ops.privatedir import open_private, replace_file

CACHE_DIR_VAR = "HLTCLOUD_CACHE_DIR"
DEFAULT_DIR = "/var/cache/hltcloud"
FILE = "hosts"


def save(names):
    """Replace the cached names with NAMES; False when the cache cannot be written."""
    try:
        fd = open_private(os.environ.get(CACHE_DIR_VAR) or DEFAULT_DIR, "cache directory")
    except OSError:
        return False
    try:
        replace_file(fd, FILE, "".join(f"{name}\n" for name in names if _is_host(name)).encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _is_host(name):
    try:
        return bool(check_host(name))
    except HostListError:
        return False
