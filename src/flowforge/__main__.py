"""``python -m flowforge``: the same as the ``flowforge`` command."""

import sys

from flowforge.workbench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
