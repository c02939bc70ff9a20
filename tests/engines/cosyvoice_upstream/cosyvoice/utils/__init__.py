"""Stand-in of upstream's cosyvoice.utils."""
