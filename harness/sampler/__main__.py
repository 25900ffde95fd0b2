"""``python -m harness.sampler``: the sampler process (see :mod:`harness.sampler.process`)."""

import sys

from .process import main

sys.exit(main())
