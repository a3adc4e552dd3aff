"""``python -m museforge``: the command line, as ``museforge`` (handy in a virtualenv whose own
bin has no ``museforge`` script, because museforge was installed outside it)."""

import sys

from .cli.main import main

sys.exit(main())
