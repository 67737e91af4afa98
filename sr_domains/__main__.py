"""``python -m sr_domains`` = the ``sr-domains`` command."""

import sys

from .cli import main

sys.exit(main())
