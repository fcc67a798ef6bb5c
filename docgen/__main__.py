"""``python -m docgen [--write | --check]``: see ``docgen.interface.main``."""

import sys

from docgen.interface import main

sys.exit(main())
