"""``python -m harness.report RUN_DIR [--reference LABEL] [--publish]``: the same as ``harness report``."""

import sys

from .files import main

sys.exit(main())
