"""``python -m card`` — see :mod:`card.cli`; the ``login`` subcommand is :mod:`card.login`."""

import sys

from card.login import main

sys.exit(main())
