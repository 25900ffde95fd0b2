"""``python -m harness``: the same command line as the ``harness`` script (harness.cli), for an
environment whose scripts directory is not on PATH."""

import sys

from .cli import main

sys.exit(main())
