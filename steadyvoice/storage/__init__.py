"""Where generated audio lives: atomic writes, checksums, verification."""
