"""rsync-wave.py (not built yet: its issue is open)."""
import sys

USAGE = ("usage: rsync-wave.py [--ssh-config FILE] [--tries N] [--head-slots K] [--timeout S] "
         "[--dry-run] [--no-colors] [--line-output] SOURCE DEST HOSTS...")


def main(argv=None):
    print(USAGE, file=sys.stderr)
    print("rsync-wave.py: not implemented yet", file=sys.stderr)
    return 2
