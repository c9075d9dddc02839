#!/usr/bin/env python3
"""rsync-wave.py: copy one file to many hosts, every host that has it becoming a source."""
import os
import sys

# The library sits beside the executable's real path: lib/ in a checkout,
# share/hltcloud/lib/ after "make install".
_here = os.path.dirname(os.path.realpath(__file__))
for _lib in (os.path.join(_here, "..", "lib"), os.path.join(_here, "..", "share", "hltcloud", "lib")):
    if os.path.isfile(os.path.join(_lib, "hltcloud", "__init__.py")):
        sys.path.insert(0, os.path.abspath(_lib))
        break

from hltcloud.transfer.cli import main  # noqa: E402

sys.exit(main())
