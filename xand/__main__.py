"""``python -m xand ...``: see ``xand.cli``."""

import sys

from xand.cli import main

sys.exit(main())
