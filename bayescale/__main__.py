"""``python -m bayescale``: the command line (see :mod:`bayescale.cli`)."""

import sys

from .cli import main

sys.exit(main())
