"""May an image's bytes go to the hypervisors? Checked on the head, before a byte leaves it.

Whoever uploads an image controls its bytes. A qcow2 can name a backing file or an external
data file, a vmdk descriptor can name extent files: qemu-img, run as root on a node, would
open those files and copy their bytes into Nova's cache, where nova and every VM booted from
the image can read them. So the file is read as data only, by the format inspector that Nova
and Glance use themselves (oslo.utils), which never opens what an image names:
- the format found in the bytes must be Glance's disk_format (as Nova: a raw disk with a
  partition table is found as "gpt" and is raw);
- the inspector's safety check must pass (qcow2: no backing file, no data file, no unknown
  feature; vmdk: monolithicSparse or streamOptimized only, every extent inside the file;
  formats it cannot vouch for are banned);
- the virtual size must be known and at most the site's [prefill] max_virtual_size.
"""
import logging
import os

from oslo_utils.imageutils import format_inspector

from hltcloud.errors import FAILED, ToolError

# The inspector logs every failed check as a warning; our one line says it, and Python's
# last-resort handler would otherwise print those warnings on standard error.
_LOG = logging.getLogger(format_inspector.__name__)
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


class ImageRefused(ToolError):
    """The image must not reach a node; the message is the reason, one line (exit status 1)."""
    exit_status = FAILED


def check(path, disk_format, max_virtual_size):
    """The virtual size of the image file PATH, which Glance calls DISK_FORMAT, when it is
    safe to convert with `qemu-img convert -f DISK_FORMAT`; ImageRefused otherwise."""
    if format_inspector.get_inspector(disk_format) is None:
        raise ImageRefused(f"no format inspector for disk_format {disk_format!r}")
    try:
        inspector = format_inspector.detect_file_format(path)
    except format_inspector.ImageFormatError as err:  # e.g. two formats' headers in one file
        raise ImageRefused(f"its format cannot be told: {err}") from None
    except OSError as err:
        raise ImageRefused(f"cannot read {path}: {err.strerror}") from None
    found = str(inspector)
    if found != disk_format and (disk_format, found) != ("raw", "gpt"):
        raise ImageRefused(f"its data is {found}, not {disk_format} as Glance says")
    try:
        inspector.safety_check()
    except format_inspector.SafetyCheckFailed as err:
        why = "; ".join(f"{name}: {failure}" for name, failure in err.failures.items())
        raise ImageRefused(f"it fails the safety check ({why})") from None
    except format_inspector.ImageFormatError as err:
        raise ImageRefused(f"it cannot be safety checked: {err}") from None
    size = _virtual_size(path, inspector, disk_format)
    if size > max_virtual_size:
        raise ImageRefused(f"its virtual size of {size} bytes is above the limit of "
                           f"{max_virtual_size} bytes ([prefill] max_virtual_size)")
    return size


def _virtual_size(path, inspector, disk_format):
    if disk_format == "raw":  # the inspector counts only the bytes it has read
        return os.path.getsize(path)
    try:
        size = inspector.virtual_size
    except (KeyError, ValueError, TypeError):  # a bare vmdk descriptor: no header to read
        size = 0
    if size <= 0:  # nothing to convert in this file: its data would be elsewhere
        raise ImageRefused(f"its virtual size cannot be read from its {disk_format} header")
    return size
