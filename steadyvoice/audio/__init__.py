"""Audio encoding."""
