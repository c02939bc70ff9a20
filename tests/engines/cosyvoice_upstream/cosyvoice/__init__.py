"""Stand-in for upstream CosyVoice (tests only): same interface, no model, no GPU."""
