"""Load benchmark entry point (bench/run.sh, `make bench`): see bench/README.md.

    uv run python bench/run.py [--duration 5] [--windows 3] [--peers express,service] ...

The work is in the `harness` package next to this file.
"""

from __future__ import annotations

import sys

from harness import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}); every benchmark process stopped", file=sys.stderr)
        sys.exit(130)
