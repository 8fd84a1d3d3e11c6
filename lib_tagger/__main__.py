"""Entry point of ``python -m lib_tagger``."""

import sys

from .cli import main

sys.exit(main())
