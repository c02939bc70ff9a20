"""Reference recordings for voice cloning: decode, measure, and refuse bad ones with a reason.

:func:`validate_reference` decodes the uploaded bytes with libsndfile (the container is detected
from the content, never from a name), then runs the checks in a fixed order, so the first problem
a person has to fix is the one reported. Every refusal is a :class:`ReferenceInvalid` subclass
with a stable code, a message that says what to do, and ``measured``/``limit``/``unit`` details
wherever a number applies. Thresholds come from :class:`VoiceSettings`; the speech detector's
own constants live in :mod:`steadyvoice.voices.levels`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from steadyvoice.errors import (
    ReferenceClipped,
    ReferenceFormatUnsupported,
    ReferenceInvalid,
    ReferenceNoSpeech,
    ReferenceNotMono,
    ReferenceSampleRateTooLow,
    ReferenceTooLong,
    ReferenceTooNoisy,
    ReferenceTooQuiet,
    ReferenceTooShort,
    ReferenceUnreadable,
)
from steadyvoice.settings import VoiceSettings
from steadyvoice.voices import levels

# libsndfile's container names -> the format we report. WAVEX and RF64 are WAV variants.
ACCEPTED_FORMATS = dict(WAV="WAV", WAVEX="WAV", RF64="WAV", FLAC="FLAC", OGG="OGG", MP3="MP3")
# Headers beyond these are corrupt or hostile, not recordings.
MAX_HEADER_SAMPLE_RATE = 192_000
MAX_HEADER_CHANNELS = 8
_BLOCK_FRAMES = 1 << 16
# What libsndfile and soundfile raise on bad input (sf.LibsndfileError is a RuntimeError). Fuzzing
# found nothing else; anything outside this list is a bug and should surface as one.
_DECODE_ERRORS = (RuntimeError, ValueError, EOFError, TypeError, OverflowError, MemoryError)
# A cut-off WAV: libsndfile clamps the frame count to the bytes present and logs the size the
# header declared. Sizes of 0 and ~4 GiB are what streaming writers leave; those are not cuts.
_WAV_DATA_LOG = re.compile(r"^\s*data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZE = 0x7FFF0000
# Missing more than this share of the declared audio means the upload was cut short.
_TRUNCATION_TOLERANCE = 0.01

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Reference:
    """An accepted reference recording and everything measured on it.

    ``samples`` is the whole file, mono float32 in [-1, 1] at ``sample_rate`` (a near-mono stereo
    file is down-mixed); ``speech_start``/``speech_end`` bound the speech in sample indices.
    """

    samples: Samples
    sample_rate: int
    format: str
    subtype: str
    channels: int
    file_seconds: float
    speech_start: int
    speech_end: int
    speech_seconds: float
    measurements: dict[str, float]


@dataclass(frozen=True)
class _Decoded:
    samples: Samples  # mono: the mid (L+R)/2 of a stereo file
    sample_rate: int
    format: str
    subtype: str
    channels: int
    complete: bool  # False when reading stopped at the length limit
    side_power: float  # summed squares of the side (L-R)/2 and of the mid, for stereo files
    mid_power: float


def _refuse(
    error: type[ReferenceInvalid],
    message: str,
    measured: float | None = None,
    limit: float | None = None,
    unit: str | None = None,
) -> ReferenceInvalid:
    details: dict[str, Any] = {}
    if measured is not None:
        details.update(measured=round(float(measured), 6), limit=float(limit or 0.0), unit=unit)
    return error(message, **details)


def validate_reference(data: bytes, limits: VoiceSettings) -> Reference:
    """Decode ``data`` and check it is usable as a cloning reference, or raise why not.

    Checks, in order: readable -> format -> sample rate -> mono (or near-mono stereo) -> file
    length -> speech present -> speech duration -> speech level -> clipping -> SNR. Raises only
    :class:`ReferenceInvalid` subclasses.
    """
    decoded = _decode(data, limits)
    measurements: dict[str, float] = {}
    if decoded.channels == 2:
        _check_stereo(decoded, limits, measurements)
    samples = decoded.samples
    rate = decoded.sample_rate
    file_seconds = len(samples) / rate
    if not decoded.complete or file_seconds > limits.max_file_seconds:
        raise _refuse(
            ReferenceTooLong,
            f"the file is longer than {limits.max_file_seconds:g} s; upload at most "
            f"{limits.max_file_seconds:g} s with {limits.max_speech_seconds:g} s of speech or less",
            file_seconds,
            limits.max_file_seconds,
            "s",
        )
    measurements["file_seconds"] = file_seconds
    start, end = _find_speech(samples, rate, limits, measurements)
    speech_seconds = (end - start) / rate
    _check_quality(samples[start:end], limits, measurements)
    return Reference(
        samples=samples,
        sample_rate=rate,
        format=decoded.format,
        subtype=decoded.subtype,
        channels=decoded.channels,
        file_seconds=file_seconds,
        speech_start=start,
        speech_end=end,
        speech_seconds=speech_seconds,
        measurements=measurements,
    )


def _decode(data: bytes, limits: VoiceSettings) -> _Decoded:
    """Open by content, check the header, then read at most ``max_file_seconds`` + 1 frame."""
    if not data:
        raise _refuse(ReferenceUnreadable, "the file is empty; upload a WAV, FLAC, OGG or MP3")
    try:
        with sf.SoundFile(io.BytesIO(data)) as audio:
            fmt, rate, channels = _check_header(audio, limits)
            cap = int(limits.max_file_seconds * rate) + 1
            samples, side_power, mid_power = _read_bounded(audio, cap)
            declared, log, subtype = int(audio.frames), str(audio.extra_info), str(audio.subtype)
    except _DECODE_ERRORS:
        raise _refuse(
            ReferenceUnreadable,
            "the file could not be decoded as audio (damaged, cut off or not audio at all); "
            "export it again as WAV, FLAC, OGG or MP3",
        ) from None
    complete = len(samples) < cap
    if complete and _truncated(fmt, declared, len(samples), log):
        raise _refuse(
            ReferenceUnreadable, "the file is cut off before its end; upload the complete file"
        )
    if len(samples) == 0:
        raise _refuse(ReferenceUnreadable, "the file holds no audio; upload a recording")
    if not (np.all(np.isfinite(samples)) and np.isfinite(side_power + mid_power)):
        raise _refuse(ReferenceUnreadable, "the file holds invalid samples (NaN or infinity)")
    np.clip(samples, -1.0, 1.0, out=samples)  # lossy decoders overshoot full scale a little
    return _Decoded(
        samples, rate, ACCEPTED_FORMATS[fmt], subtype, channels, complete, side_power, mid_power
    )


def _check_header(audio: sf.SoundFile, limits: VoiceSettings) -> tuple[str, int, int]:
    """Sanity, format, sample rate and channel count: all known before reading any audio."""
    fmt, rate, channels = str(audio.format), int(audio.samplerate), int(audio.channels)
    if not 0 < rate <= MAX_HEADER_SAMPLE_RATE or not 0 < channels <= MAX_HEADER_CHANNELS:
        raise _refuse(
            ReferenceUnreadable,
            f"the file header is damaged ({rate} Hz, {channels} channels); export it again",
        )
    if fmt not in ACCEPTED_FORMATS:
        raise _refuse(
            ReferenceFormatUnsupported,
            f"{fmt} files are not accepted; upload WAV, FLAC, OGG (Vorbis/Opus) or MP3",
        )
    if rate < limits.min_sample_rate:
        raise _refuse(
            ReferenceSampleRateTooLow,
            f"the recording is {rate} Hz; record at {limits.min_sample_rate / 1000:g} kHz or more",
            rate,
            limits.min_sample_rate,
            "Hz",
        )
    if channels > 2:
        raise _refuse(
            ReferenceNotMono,
            f"the recording has {channels} channels; upload one voice in mono",
            channels,
            2,
            "channels",
        )
    return fmt, rate, channels


def _read_bounded(audio: sf.SoundFile, cap: int) -> tuple[Samples, float, float]:
    """Read in blocks until the stream ends or ``cap`` frames, whatever the header claims.

    Stereo is down-mixed block by block (keeping only the side and mid energies), so memory is
    one mono copy of at most ``cap`` samples plus a block.
    """
    blocks: list[Samples] = []
    total, side_power, mid_power = 0, 0.0, 0.0
    while total < cap:
        block = audio.read(min(_BLOCK_FRAMES, cap - total), dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        if block.shape[1] == 1:
            blocks.append(block[:, 0].copy())
        else:
            mid, side = (block[:, 0] + block[:, 1]) * 0.5, (block[:, 0] - block[:, 1]) * 0.5
            side_power += float(np.sum(np.square(side, dtype=np.float64)))
            mid_power += float(np.sum(np.square(mid, dtype=np.float64)))
            blocks.append(mid)
        total += len(block)
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return samples, side_power, mid_power


def _truncated(fmt: str, declared: int, got: int, log: str) -> bool:
    """Whether the header promised noticeably more audio than the file holds.

    MP3 is exempt: its length is an estimate (tags, missing Xing header), so a cut MP3 is judged
    on the audio it holds.
    """
    if fmt == "MP3":
        return False
    if declared > 0 and got < declared * (1.0 - _TRUNCATION_TOLERANCE):
        return True
    match = _WAV_DATA_LOG.search(log)
    if match is None:
        return False
    claimed, present = int(match.group(1)), int(match.group(2))
    return 0 < claimed < _STREAMING_SIZE and present < claimed * (1.0 - _TRUNCATION_TOLERANCE)


def _check_stereo(decoded: _Decoded, limits: VoiceSettings, measurements: dict[str, float]) -> None:
    """Stereo passes only when the side signal is far below the mid (the same voice twice)."""
    side_db = levels.ratio_db(decoded.side_power, decoded.mid_power)
    measurements["side_db"] = side_db
    if side_db > limits.stereo_max_side_db:
        raise _refuse(
            ReferenceNotMono,
            f"the two channels differ (side signal {side_db:.1f} dB relative to the mid); "
            "upload one voice in mono, or a stereo file with the same signal in both channels",
            side_db,
            limits.stereo_max_side_db,
            "dB",
        )


def _find_speech(
    samples: Samples, rate: int, limits: VoiceSettings, measurements: dict[str, float]
) -> tuple[int, int]:
    """Detect speech, trim the silence around it and check its duration; return its bounds."""
    speech = levels.find_speech(samples, rate)
    measurements.update(
        noise_floor_dbfs=speech.noise_dbfs,
        voiced_seconds=speech.voiced_seconds,
        modulation_db=speech.modulation_db,
        speech_dbfs=speech.speech_dbfs,
        snr_db=speech.snr_db,
    )
    _check_speech_present(speech.voiced_seconds, speech.modulation_db)
    start, end = speech.start, speech.end
    speech_seconds = (end - start) / rate
    measurements.update(
        speech_seconds=speech_seconds,
        leading_silence_seconds=start / rate,
        trailing_silence_seconds=(len(samples) - end) / rate,
    )
    if speech_seconds < limits.min_speech_seconds:
        raise _refuse(
            ReferenceTooShort,
            f"the recording has {speech_seconds:.1f} s of speech; "
            f"record at least {limits.min_speech_seconds:g} s",
            speech_seconds,
            limits.min_speech_seconds,
            "s",
        )
    if speech_seconds > limits.max_speech_seconds:
        raise _refuse(
            ReferenceTooLong,
            f"the recording has {speech_seconds:.1f} s of speech; "
            f"trim it to at most {limits.max_speech_seconds:g} s",
            speech_seconds,
            limits.max_speech_seconds,
            "s",
        )
    return start, end


def _check_speech_present(voiced_seconds: float, modulation: float) -> None:
    """Speech needs voiced (periodic) sound that also rises and falls like syllables."""
    if voiced_seconds < levels.MIN_VOICED_SECONDS:
        raise _refuse(
            ReferenceNoSpeech,
            f"no speech found ({voiced_seconds:.2f} s of voiced sound); "
            "record someone speaking, close to the microphone",
            voiced_seconds,
            levels.MIN_VOICED_SECONDS,
            "s",
        )
    if modulation < levels.MIN_MODULATION_DB:
        raise _refuse(
            ReferenceNoSpeech,
            f"no speech found: the sound is steady (a hum or a tone, {modulation:.1f} dB of "
            "level variation); record someone speaking",
            modulation,
            levels.MIN_MODULATION_DB,
            "dB",
        )


def _check_quality(speech: Samples, limits: VoiceSettings, measurements: dict[str, float]) -> None:
    """Level, clipping and noise of the speech span, in that order."""
    level = measurements["speech_dbfs"]
    if level < limits.min_speech_dbfs:
        raise _refuse(
            ReferenceTooQuiet,
            f"the speech is too quiet ({level:.1f} dBFS); record closer to the microphone "
            f"or raise the input gain to reach {limits.min_speech_dbfs:g} dBFS or more",
            level,
            limits.min_speech_dbfs,
            "dBFS",
        )
    clipped = levels.clipped_fraction(speech)
    peak = float(np.max(np.abs(speech))) if speech.size else 0.0
    measurements.update(clipped_fraction=clipped, peak_dbfs=levels.to_db(peak * peak))
    if clipped > limits.max_clipped_fraction:
        raise _refuse(
            ReferenceClipped,
            f"{clipped:.2%} of the speech is clipped; lower the input gain and record again",
            clipped,
            limits.max_clipped_fraction,
            "fraction",
        )
    snr = measurements["snr_db"]
    if snr < limits.min_snr_db:
        raise _refuse(
            ReferenceTooNoisy,
            f"the background noise is too loud (speech is {snr:.1f} dB above the noise); "
            f"record somewhere quieter to reach {limits.min_snr_db:g} dB or more",
            snr,
            limits.min_snr_db,
            "dB",
        )
