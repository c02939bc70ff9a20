"""Stand-in of upstream's cosyvoice.cli."""
