"""``python -m edgeprune`` is the same as the ``edgeprune`` console script."""

import sys

from edgeprune.cli import main

sys.exit(main())
