"""``python -m steadyvoice``."""

from __future__ import annotations

import sys

from steadyvoice.cli import main

sys.exit(main())
