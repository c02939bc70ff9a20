"""Failures in upstream's LLM thread, which upstream itself never notices.

Each upstream call starts a thread that generates speech tokens while the calling thread polls
``llm_end_dict[uuid]`` until that thread marks it done. If the LLM thread dies (CUDA out of
memory on long text, most often), the flag is never set and the call waits forever: the worker
would hang with its job. The watch records such an exception, releases the waiting loop, and
lets the engine raise it where the call was made.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("steadyvoice.cosyvoice")

# Python names a thread after its target: "Thread-7 (llm_job)" runs upstream's LLM.
UPSTREAM_THREAD = "(llm_job)"
# Upstream's per-request state, keyed by request uuid (cosyvoice/cli/model.py). With one call at a
# time, whatever is left after a failed call belongs to that call.
REQUEST_STATE = (
    "tts_speech_token_dict",
    "llm_end_dict",
    "mel_overlap_dict",
    "flow_cache_dict",
    "hift_cache_dict",
)


class ThreadWatch:
    """Chained into ``threading.excepthook`` while the engine is loaded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner  # upstream's model object (``AutoModel(...).model``)
        self._active = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._previous = threading.excepthook
        threading.excepthook = self._hook

    def begin(self) -> None:
        with self._lock:
            self._active, self._error = True, None

    def end(self) -> None:
        with self._lock:
            self._active = False

    def raise_if_failed(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def forget_requests(self) -> None:
        """Drop the per-request state a failed call left behind in upstream's model."""
        for name in REQUEST_STATE:
            state = getattr(self._inner, name, None)
            if isinstance(state, dict):
                state.clear()

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        error = args.exc_value
        name = str(getattr(args.thread, "name", ""))
        with self._lock:
            active = self._active
            if active and error is not None and self._error is None:
                self._error = error
        if error is None or not (active or UPSTREAM_THREAD in name):
            self._previous(args)
            return
        if not active:
            # The LLM thread of a call that was given up (closed stream, failed call) stops
            # once its state is forgotten: expected, not an error.
            log.info("upstream thread %s of an abandoned call stopped: %r", name, error)
            return
        ends = getattr(self._inner, "llm_end_dict", None)
        if isinstance(ends, dict):
            for key in list(ends):
                ends[key] = True  # let upstream's polling loop finish; we discard its output
        log.error("upstream thread %s failed", name, exc_info=error)
