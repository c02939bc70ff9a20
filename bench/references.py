"""Reference speakers for bench/quality.py: human recordings shipped in Debian packages.

Each speaker is a set of short clips by one person (letters and words from the KDE learning
games KLettres and KTuberling, and the channel announcements of ALSA's ``speaker-test``). A
reference is built by trimming every clip to its sound (plus a short margin of the clip's own
room tone), dropping clips that clip, and joining them in file-name order until the joined
length reaches ``TARGET_SECONDS``. The result is one mono float32 recording at the clips' own
sample rate, which bench/quality.py then encodes as a 16-bit WAV and passes through the
service's own ``validate_reference``, exactly like an upload.

Usage: ``python bench/references.py [--root DIR] [--out DIR]`` lists the speakers, builds every
reference and optionally writes them as WAV files (to listen to them).

None of these packages is needed to serve or to test; ``make bench-quality`` installs them
(as root). Without root, unpack them instead: ``apt-get download klettres-data ktuberling-data
alsa-utils``, ``dpkg -x`` each ``.deb`` into one directory, and pass ``--root DIR`` to
bench/quality.py.
"""

from __future__ import annotations

import argparse
import glob
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

FloatAudio = npt.NDArray[np.float32]

ROOT = Path("/")
# Length to collect per reference (clips with their margins); the service accepts 3-30 s of
# speech (VoiceSettings), and the ceiling in bench/quality.py needs enough in each half.
TARGET_SECONDS = 20.0
# Room tone kept on each side of a clip's sound, so the joins sound like pauses, not cuts.
MARGIN_SECONDS = 0.12
# A clip is trimmed to its frames above max(loudest frame - 40 dB, quietest frames + 8 dB).
_FRAME_SECONDS = 0.01
_BELOW_PEAK_DB = 40.0
_ABOVE_FLOOR_DB = 8.0
# Samples at or above this magnitude count as clipped (the service uses 0.999 too).
_CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class Speaker:
    """One reference speaker: where the clips are and what is known about them."""

    id: str
    sex: str  # "male" or "female"
    language: str
    package: str  # Debian package
    version: str  # the package version these numbers were measured with (Debian 12)
    licence: str  # as stated in the package's copyright file
    globs: tuple[str, ...]  # relative to the root, in the order clips are used
    says: str
    credit: str  # who the package names as the speaker, or how the sex was judged
    exclude: tuple[str, ...] = ()  # file names (not paths) to leave out


SPEAKERS: tuple[Speaker, ...] = (
    Speaker(
        id="klettres-en",
        sex="male",
        language="English (US)",
        package="klettres-data",
        version="4:22.12.3-1",
        licence="GPL-2+",
        globs=("usr/share/klettres/en/alpha/*.ogg", "usr/share/klettres/en/syllab/*.ogg"),
        says="the English letter names A to Z",
        credit="Robert Wadley (KLettres handbook, Credits: 'English sounds')",
    ),
    Speaker(
        id="klettres-en-gb",
        sex="female",
        language="English (GB)",
        package="klettres-data",
        version="4:22.12.3-1",
        licence="GPL-2+",
        globs=("usr/share/klettres/en_GB/alpha/*.ogg", "usr/share/klettres/en_GB/syllab/*.ogg"),
        says="English letter names a to v (f, m and r clip and are left out)",
        credit="not named in the package; judged female from pitch (mean F0 about 210-230 Hz)",
    ),
    Speaker(
        id="ktuberling-en",
        sex="male",
        language="English (US)",
        package="ktuberling-data",
        version="4:22.12.3-1",
        licence="GPL-2+",
        globs=("usr/share/ktuberling/sounds/en/*.ogg",),
        says="names of things: ball, bow, coat, ear, earring, arch, birds, boy, camel, ...",
        credit="John Calhoun (KTuberling handbook, Credits: 'English sounds')",
        # The five tv_* words are spoken by a different (higher) voice; leave them out.
        exclude=("tv_bicycle.ogg", "tv_car.ogg", "tv_cyclist.ogg", "tv_train.ogg", "tv_tree.ogg"),
    ),
    Speaker(
        id="alsa-speaker-test",
        sex="female",
        language="English",
        package="alsa-utils",
        version="1.2.8-1",
        licence="GPL-2",
        globs=("usr/share/sounds/alsa/*.wav",),
        says="'Front Center', 'Front Left', ... 'Side Right' (speaker-test channel names)",
        credit="not named in the package; judged female from pitch (mean F0 about 180-190 Hz)",
        exclude=("Noise.wav",),  # pink noise, not speech
    ),
    Speaker(
        id="klettres-cs",
        sex="female",
        language="Czech",
        package="klettres-data",
        version="4:22.12.3-1",
        licence="GPL-2+",
        globs=("usr/share/klettres/cs/alpha/*.ogg", "usr/share/klettres/cs/syllab/*.ogg"),
        says="Czech letter names (29 of the alphabet's 32)",
        credit="Eva Mikulčíková (KLettres handbook, Credits: 'Czech sounds')",
    ),
    Speaker(
        id="klettres-fr",
        sex="male",
        language="French",
        package="klettres-data",
        version="4:22.12.3-1",
        licence="GPL-2+",
        globs=("usr/share/klettres/fr/alpha/*.ogg", "usr/share/klettres/fr/syllab/*.ogg"),
        says="French letter names and syllables (the 18 of 36 clips that do not clip)",
        credit="Ludovic Grossard (KLettres handbook, Credits: 'French sounds')",
    ),
)

PACKAGES = tuple(sorted({s.package for s in SPEAKERS}))


class MissingSource(RuntimeError):
    """A speaker's package is not installed (or not unpacked under the given root)."""


@dataclass(frozen=True)
class Built:
    """A reference recording made from one speaker's clips."""

    speaker: Speaker
    samples: FloatAudio
    sample_rate: int
    clips: tuple[str, ...]  # paths used, relative to the root
    skipped: tuple[str, ...]  # paths left out (clipped, other sample rate), with the reason

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def locate(speaker: Speaker, root: Path | None = None) -> list[Path]:
    """The speaker's clip files under ``root``, in use order, or raise with the install command."""
    base = root or ROOT
    found: list[Path] = []
    for pattern in speaker.globs:
        matches = sorted(glob.glob(str(base / pattern)), key=_natural_key)
        found.extend(Path(m) for m in matches if Path(m).name not in speaker.exclude)
    if not found:
        where = f" under {base}" if str(base) != "/" else ""
        raise MissingSource(
            f"speaker {speaker.id}: no files match {', '.join(speaker.globs)}{where}. "
            f"Install the Debian package: apt-get install -y {speaker.package} "
            f"(or run `make bench-quality`, which installs {' '.join(PACKAGES)})"
        )
    return found


def build(speaker: Speaker, root: Path | None = None) -> Built:
    """Trim, screen and join the speaker's clips into one reference (deterministic)."""
    base = root or ROOT
    paths = locate(speaker, base)
    parts: list[FloatAudio] = []
    used: list[str] = []
    skipped: list[str] = []
    rate = 0
    total = 0.0
    for path in paths:
        relative = str(path.relative_to(base))
        audio, clip_rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1, dtype=np.float64).astype(np.float32)
        rate = rate or clip_rate
        if clip_rate != rate:
            skipped.append(f"{relative} ({clip_rate} Hz, the others are {rate} Hz)")
            continue
        start, end = _sound_span(mono, rate)
        if end <= start:
            skipped.append(f"{relative} (no sound)")
            continue
        if np.any(np.abs(mono[start:end]) >= _CLIP_LEVEL):
            skipped.append(f"{relative} (clipped)")
            continue
        margin = int(MARGIN_SECONDS * rate)
        parts.append(mono[max(0, start - margin) : min(len(mono), end + margin)])
        used.append(relative)
        total += len(parts[-1]) / rate
        if total >= TARGET_SECONDS:
            break
    if not parts:
        raise MissingSource(f"speaker {speaker.id}: no usable clip among {len(paths)} files")
    samples = np.concatenate(parts).astype(np.float32)
    return Built(speaker, samples, rate, tuple(used), tuple(skipped))


def wav_bytes(samples: FloatAudio, sample_rate: int) -> bytes:
    """16-bit PCM WAV, as an operator would upload it."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _sound_span(x: FloatAudio, rate: int) -> tuple[int, int]:
    """First and one-past-last sample of the frames that carry the clip's sound."""
    hop = max(1, int(_FRAME_SECONDS * rate))
    count = len(x) // hop
    if count == 0:
        return 0, 0
    frames = x[: count * hop].astype(np.float64).reshape(count, hop)
    db = 10.0 * np.log10(np.maximum(np.mean(frames * frames, axis=1), 1e-12))
    floor = float(np.percentile(db, 10.0))
    threshold = max(float(np.max(db)) - _BELOW_PEAK_DB, floor + _ABOVE_FLOOR_DB)
    active = np.flatnonzero(db > threshold)
    if active.size == 0:
        return 0, 0
    return int(active[0]) * hop, (int(active[-1]) + 1) * hop


def _natural_key(path: str) -> tuple[object, ...]:
    """Sort ``a-2`` before ``a-10`` (KLettres numbers its clips)."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="where the packages live (/)")
    parser.add_argument("--out", type=Path, default=None, help="write each reference as WAV here")
    args = parser.parse_args()
    for speaker in SPEAKERS:
        try:
            built = build(speaker, args.root)
        except MissingSource as exc:
            raise SystemExit(str(exc)) from None
        print(
            f"{speaker.id:18s} {speaker.sex:6s} {built.sample_rate} Hz {built.seconds:5.1f} s "
            f"from {len(built.clips)} clips ({len(built.skipped)} skipped)"
        )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{speaker.id}.wav").write_bytes(
                wav_bytes(built.samples, built.sample_rate)
            )


if __name__ == "__main__":
    main()
