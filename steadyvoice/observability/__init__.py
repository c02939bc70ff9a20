"""Logs (and, later, metrics and the SLO report)."""
