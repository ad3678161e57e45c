"""`python -m d2l_utils ...`: see `d2l_utils.cli`."""

import sys

from .cli import main

sys.exit(main())
