"""steadyvoice: a self-hosted voice-cloning text-to-speech service you can put an SLA on."""

from __future__ import annotations

__version__ = "0.1.0"
