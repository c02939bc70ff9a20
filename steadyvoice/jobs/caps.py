"""A job's size once its text is as spoken: characters and audio seconds, checked at submit.

``api.max_text_chars`` bounds the text as sent, but spelling out numbers makes it up to five
times longer ("12" is "twelve"; 5,000 digits are about 25,000 spoken characters, 1,500 s of
audio). So the text the engine will speak is capped too (``api.max_spoken_chars``,
``spoken_text_too_long``), and so is the audio a job may make (``jobs.max_audio_seconds``,
``audio_too_long``): refused at submit where the engine can estimate it, and enforced while it
is made (:mod:`steadyvoice.engines.budget`). Every route and ``steadyvoice synth`` run these
through :class:`~steadyvoice.jobs.submit.RequestChecks`.
"""

from __future__ import annotations

from steadyvoice.engines.base import Engine, SynthesisRequest
from steadyvoice.engines.budget import ADVICE, AudioEstimating, refuse_over
from steadyvoice.errors import SpokenTextTooLong
from steadyvoice.settings import Settings


class JobCaps:
    """The size caps of one service's settings."""

    def __init__(self, settings: Settings) -> None:
        self.max_spoken_chars = settings.api.max_spoken_chars
        self.max_audio_seconds = settings.jobs.max_audio_seconds or None

    def check_spoken(self, spoken: str, text: str) -> None:
        """Refuse ``spoken`` (``text`` as the engine will speak it) over the character cap."""
        chars, limit = len(spoken), self.max_spoken_chars
        if chars <= limit:
            return
        grown = " once numbers, dates and symbols are spelled out" if spoken != text else ""
        raise SpokenTextTooLong(
            f"the text has {chars} characters{grown} ({len(text)} as sent); "
            f"the limit is {limit}: {ADVICE}",
            chars=chars,
            text_chars=len(text),
            limit=limit,
        )

    def estimate(self, engine: Engine, request: SynthesisRequest) -> float | None:
        """The audio seconds ``request`` will make, about (None: the engine cannot tell);
        refuses one estimated over the audio cap."""
        if not isinstance(engine, AudioEstimating):
            return None
        seconds = float(engine.estimate_seconds(request))
        refuse_over(seconds, self.max_audio_seconds, estimated=True)
        return seconds
