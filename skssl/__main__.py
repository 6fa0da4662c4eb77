"""``python -m skssl``: the ``skssl`` command line (see :mod:`skssl.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
