"""``python -m museforge.cli``."""

import sys

from .main import main

sys.exit(main())
