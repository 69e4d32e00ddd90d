"""``python -m card`` — see :mod:`card.cli`; ``login`` is :mod:`card.login`,
``sign-filing`` is :mod:`card.filing`."""

import sys

from card.filing import main

sys.exit(main())
