"""Validate and analyse an uploaded reference in a throw-away child process.

Decoding hostile audio runs C code (libsndfile, WORLD) on bytes a client chose. A crash, a hang
or a memory blow-up there must cost one upload, never the API process: each inspection runs in a
fresh process forked from a single-threaded fork server that has the audio libraries preloaded,
and is killed when it overruns its time.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from steadyvoice import errors
from steadyvoice.settings import VoiceSettings

_PRELOAD = [
    "steadyvoice.voices.inspection",
    "steadyvoice.voices.reference",
    "steadyvoice.engines.adaptation",
]


@dataclass(frozen=True)
class Inspection:
    """What the service learned from a reference recording that passed every check."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    file_seconds: float
    speech_seconds: float
    measurements: dict[str, float]
    analysis: dict[str, Any]
    analysis_version: str


def inspect_reference(data: bytes, limits: VoiceSettings) -> Inspection:
    """Validate (raising a ``reference_*`` error) and analyse, in this process."""
    from steadyvoice.engines.adaptation import adaptation_version, analyse_reference
    from steadyvoice.voices.reference import validate_reference

    ref = validate_reference(data, limits)
    speech = ref.samples[ref.speech_start : ref.speech_end]
    return Inspection(
        format=ref.format,
        subtype=ref.subtype,
        sample_rate=ref.sample_rate,
        channels=ref.channels,
        file_seconds=round(ref.file_seconds, 4),
        speech_seconds=round(ref.speech_seconds, 4),
        measurements={k: round(float(v), 4) for k, v in ref.measurements.items()},
        analysis=analyse_reference(speech, ref.sample_rate),
        analysis_version=adaptation_version(),
    )


def _child(conn: Connection, data: bytes, limits: VoiceSettings) -> None:
    # A hostile header can ask for a huge decode buffer: cap this process's address space so
    # that ends in a MemoryError (refused as unreadable) instead of the machine swapping.
    cap = limits.analysis_memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        conn.send(("ok", inspect_reference(data, limits)))
    except errors.ReferenceInvalid as exc:
        conn.send(("refused", type(exc).__name__, exc.message, exc.details))
    except errors.SteadyVoiceError as exc:
        conn.send(("failed", exc.message))
    except MemoryError:
        conn.send(("failed", f"it needs more than {limits.analysis_memory_mb} MB to analyse"))
    except Exception as exc:  # noqa: BLE001 - a decoder bug on this file; the parent reports it
        conn.send(("failed", f"{type(exc).__name__} while decoding"))
    finally:
        conn.close()


ChildMain = Callable[[Connection, bytes, VoiceSettings], None]


def inspect_isolated(
    data: bytes, limits: VoiceSettings, child_main: ChildMain | None = None
) -> Inspection:
    """:func:`inspect_reference` in a child process; its crash or overrun refuses the upload.

    ``child_main`` replaces the child's entry point (tests use it to crash or hang the child).
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main or _child, args=(child, data, limits), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(limits.analysis_timeout_seconds):
            raise errors.ReferenceUnreadable(
                "analysing the recording took too long; send a shorter or simpler file",
                limit=limits.analysis_timeout_seconds,
                unit="s",
            )
        reply = parent.recv()
    except EOFError:
        raise errors.ReferenceUnreadable(
            "the recording could not be decoded (the decoder stopped on it)"
        ) from None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    return _unpack(reply)


def _unpack(reply: tuple[Any, ...]) -> Inspection:
    kind = reply[0]
    if kind == "ok":
        inspection: Inspection = reply[1]
        return inspection
    if kind == "refused":
        _, name, message, details = reply
        cls = getattr(errors, name, None)
        if not (isinstance(cls, type) and issubclass(cls, errors.ReferenceInvalid)):
            cls = errors.ReferenceUnreadable
        raise cls(message, **details)
    raise errors.ReferenceUnreadable(f"the recording could not be analysed: {reply[1]}")
