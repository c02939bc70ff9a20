"""``steadyvoice synth`` refuses what a job would refuse for its size, in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from processes import run_cli  # type: ignore[import-not-found]

REFUSED = 2
LONG = " ".join(f"This is sentence number {n} of a long text." for n in range(1, 41))


@pytest.mark.parametrize(
    ("text", "env", "code"),
    [
        ("1234567890" * 500, {}, "spoken_text_too_long"),
        (LONG, {"STEADYVOICE_JOBS__MAX_AUDIO_SECONDS": "60"}, "audio_too_long"),
    ],
)
def test_synth_refuses_a_job_too_large(
    tmp_path: Path, text: str, env: dict[str, str], code: str
) -> None:
    out = run_cli(
        ["synth", text, "-o", str(tmp_path / "a.wav")],
        tmp_path / "data",
        STEADYVOICE_ENGINE="fake",
        **env,
    )
    assert out.returncode == REFUSED, out
    assert "Traceback" not in out.stderr and out.stdout == ""
    said = out.stderr.splitlines()[-1]
    assert said.startswith(f"steadyvoice: error: {code}: "), out.stderr
    assert "split the text into smaller jobs" in said
    assert not (tmp_path / "a.wav").exists()
