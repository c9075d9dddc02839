"""openstack-hlt-manage (not built yet: its issue is open)."""
import sys

USAGE = ("usage: openstack-hlt-manage [--for-real] [--no-colors] [--line-output] [--parallel] "
         "[--fanout N] [--vm-timeout SECONDS] [--force-shutoff] [--ssh-config FILE] [--nvms] "
         "[--json] [--config FILE] enable|disable|status|runvms|listwns|vmstats [HOSTS...]")


def main(argv=None):
    print(USAGE, file=sys.stderr)
    print("openstack-hlt-manage: not implemented yet", file=sys.stderr)
    return 2
