"""Voice profiles in SQL, beside the jobs. Profiles are never removed, only marked deleted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from steadyvoice.errors import VoiceNotFound
from steadyvoice.jobs.database import newest_first
from steadyvoice.jobs.models import utcnow
from steadyvoice.jobs.store import JobStore
from steadyvoice.voices.models import Voice

VOICE_ID_PREFIX = "vp_"
VOICE_ID = re.compile(r"vp_[0-9a-f]{32}")


class VoiceStore:
    """Reads and writes the ``voices`` table through the job store's connections."""

    def __init__(self, jobs: JobStore) -> None:
        self._jobs = jobs

    def add(self, voice: Voice) -> Voice:
        with self._jobs.session() as s:
            s.add(voice)
        return voice

    def get(self, voice_id: str, tenant: str | None = None) -> Voice:
        """The profile, deleted or not; ``voice_not_found`` if there never was one, or if
        ``tenant`` is given and the profile is another tenant's (indistinguishable)."""
        if not VOICE_ID.fullmatch(voice_id):  # never send a client's junk (NUL...) to SQL
            raise VoiceNotFound(f"no voice {voice_id!r}", voice_id=voice_id)
        with self._jobs.reading() as s:
            voice = s.get(Voice, voice_id)
        if voice is None or (tenant is not None and voice.tenant != tenant):
            raise VoiceNotFound(f"no voice {voice_id}", voice_id=voice_id)
        return voice

    def list_voices(
        self,
        *,
        include_deleted: bool = False,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
        tenant: str | None = None,
    ) -> list[Voice]:
        """Newest first; ``before`` is the (created_at, id) of the last item of the prior page."""
        q = newest_first(select(Voice), Voice.created_at, Voice.id, before, limit)
        if tenant is not None:
            q = q.where(Voice.tenant == tenant)
        if not include_deleted:
            q = q.where(Voice.deleted_at.is_(None))
        with self._jobs.reading() as s:
            return list(s.scalars(q))

    def ids_named(self, name: str, tenant: str | None = None, limit: int = 5) -> list[str]:
        """Ids of live profiles called ``name`` (any case), newest first (for a hint)."""
        q = newest_first(select(Voice.id), Voice.created_at, Voice.id, None, limit)
        q = q.where(func.lower(Voice.name) == name.lower(), Voice.deleted_at.is_(None))
        if tenant is not None:
            q = q.where(Voice.tenant == tenant)
        with self._jobs.reading() as s:
            return [str(voice_id) for voice_id in s.scalars(q)]

    def every(self) -> Iterator[Voice]:
        """Every profile, deleted ones included, oldest first (for verify and backup)."""
        with self._jobs.reading() as s:
            yield from s.scalars(select(Voice).order_by(Voice.created_at, Voice.id))

    def set_analysis(self, voice_id: str, analysis: dict[str, Any], version: str) -> Voice:
        """Replace a profile's analysis (after an engine upgrade); the reference never changes."""
        with self._jobs.session() as s:
            s.execute(
                update(Voice)
                .where(Voice.id == voice_id)
                .values(analysis=analysis, analysis_version=version)
            )
        return self.get(voice_id)

    def delete(self, voice_id: str, by: str, tenant: str | None = None) -> Voice:
        """Mark deleted (once; a repeat keeps the first time and actor) and return the profile."""
        self.get(voice_id, tenant)
        with self._jobs.session() as s:
            s.execute(
                update(Voice)
                .where(Voice.id == voice_id, Voice.deleted_at.is_(None))
                .values(deleted_at=utcnow(), deleted_by=by)
            )
        return self.get(voice_id)
