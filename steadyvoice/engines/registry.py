"""Maps engine names to factories. Factories are cheap: they never load a model."""

from __future__ import annotations

from collections.abc import Callable

from steadyvoice.engines.base import Engine
from steadyvoice.errors import EngineUnavailable
from steadyvoice.settings import Settings

EngineFactory = Callable[[Settings], Engine]


def _fake(settings: Settings) -> Engine:
    from steadyvoice.engines.fake import FakeEngine

    return FakeEngine(settings.fake)


def _piper(settings: Settings) -> Engine:
    from steadyvoice.engines.piper import PiperEngine

    return PiperEngine(settings.piper)


def _cosyvoice(settings: Settings) -> Engine:
    # Importing the adapter is torch-free; torch and upstream load in CosyVoiceEngine.load().
    from steadyvoice.engines.cosyvoice import CosyVoiceEngine

    return CosyVoiceEngine(settings.cosyvoice, cache_dir=settings.data_dir / "cache")


ENGINES: dict[str, EngineFactory] = {"fake": _fake, "piper": _piper, "cosyvoice": _cosyvoice}


def build_engine(settings: Settings) -> Engine:
    """The configured engine, not yet loaded."""
    try:
        factory = ENGINES[settings.engine]
    except KeyError:
        raise EngineUnavailable(f"no engine named {settings.engine!r}") from None
    return factory(settings)
