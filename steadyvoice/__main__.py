"""``python -m steadyvoice``."""

from __future__ import annotations

import sys

from steadyvoice.cli import main

if __name__ == "__main__":
    sys.exit(main())
