"""The ``cosyvoice`` engine: CosyVoice2 / Fun-CosyVoice3 behind steadyvoice's engine contract.

:class:`CosyVoiceEngine` (``engine``) is the entry point. Its rooms: ``model`` (loading upstream
from a checkout and a model dir), ``prompts`` and ``text`` (what each mode sends upstream),
``audio`` (tensors to PCM), ``files`` (the model-file hashes in the engine version), ``gpu``
(memory release and out-of-memory recovery) and ``threads`` (upstream's LLM thread).
"""

from steadyvoice.engines.cosyvoice.engine import HASH_CACHE, CosyVoiceEngine

__all__ = ["HASH_CACHE", "CosyVoiceEngine"]
