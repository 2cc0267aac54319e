"""``python -m powercheck`` = the ``powercheck`` command."""

import sys

from powercheck.cli import main

sys.exit(main())
