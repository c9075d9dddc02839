"""openstack-prefill-cache (not built yet: its issue is open)."""
import sys

USAGE = ("usage: openstack-prefill-cache [--ssh-config FILE] [--dry-run] [--no-colors] "
         "[--line-output] IMAGE HOSTS")


def main(argv=None):
    print(USAGE, file=sys.stderr)
    print("openstack-prefill-cache: not implemented yet", file=sys.stderr)
    return 2
