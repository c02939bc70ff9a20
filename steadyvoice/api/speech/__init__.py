"""The OpenAI-compatible speech API: ``POST /v1/audio/speech``, ``GET /v1/models``,
``GET /v1/audio/voices``.

* :mod:`.routes`: the routes;
* :mod:`.schemas`: their request and response bodies;
* :mod:`.request`: what a request means (names resolved, streaming by default, 24 kHz pcm,
  fields ignored);
* :mod:`.availability`: when a call is refused before its job is recorded (no live worker, the
  server shutting down);
* :mod:`.wait`: waiting on the job behind a call, and what its end means for the caller;
* :mod:`.stream`: streaming a job's audio as the worker publishes it.

``router`` is the one entry point (``app.include_router(speech.router)``).
"""

from __future__ import annotations

from steadyvoice.api.speech.routes import router

__all__ = ["router"]
