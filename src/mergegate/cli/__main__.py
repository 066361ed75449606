"""``python -m mergegate.cli``: the same as the ``mergegate`` command."""

import sys

from . import main

sys.exit(main())
