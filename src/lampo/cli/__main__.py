"""``python -m lampo.cli``: the ``lampo`` command, as the console script runs it."""

import sys

from lampo.cli import main

sys.exit(main())
