"""Speech engines: a small Protocol plus a registry keyed by name."""
