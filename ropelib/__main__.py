# generated from notebooks/90_cli.md by tools/export.py, do not edit

import sys

from ropelib.cli import main

if __name__ == "__main__":
    sys.exit(main())
