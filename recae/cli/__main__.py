"""``python -m recae.cli``: the same as the ``recae`` command."""

import sys

from recae.cli import main

sys.exit(main())
