"""Stand-in of the Matcha-TTS submodule upstream puts on sys.path (empty)."""
