"""`python -m rating ...` runs the command line, like the `rating` script."""

import sys

from rating.cli.commands import main

sys.exit(main())
