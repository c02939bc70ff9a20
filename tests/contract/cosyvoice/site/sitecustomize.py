"""Loaded at start-up by the worker processes the contract suite starts (PYTHONPATH names this
folder): upstream's prompt-audio reader works on a CPU-only host (see ../soundfile_load.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import soundfile_load

soundfile_load.install()
