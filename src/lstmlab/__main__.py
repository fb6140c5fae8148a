"""``python -m lstmlab``: the command line (``lstmlab.cli.main``)."""

import sys

from lstmlab.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
