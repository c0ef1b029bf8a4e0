# generated from notebooks/90_cli.md by tools/export.py, do not edit

# %% notebooks/90_cli.md: The command line / Bad input and bugs
import sys

from ropelib.cli import main

if __name__ == "__main__":
    sys.exit(main())


__all__: list[str] = []
