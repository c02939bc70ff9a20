"""The doc-test markers and runner themselves: what runs, what is skipped, what fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from doc_blocks import MarkerError, shell_blocks
from doc_runs import audio_problem, output_files, run_blocks

DOC = """# A document

```bash
echo one
```

<!-- doc-test: skip: needs a GPU -->
```sh
nvidia-smi
```

<!-- doc-test: expect-status 404, 409 -->

````shell
curl -s x
```
still inside
````

```python
print("not shell")
```

```
no language: not run
```
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.md"
    path.write_text(text)
    return path


def test_shell_blocks_and_their_markers_are_found(tmp_path: Path) -> None:
    blocks = shell_blocks(write(tmp_path, DOC))
    assert [(b.line, b.skip, sorted(b.expect_status)) for b in blocks] == [
        (3, None, []),
        (8, "needs a GPU", []),
        (14, None, [404, 409]),
    ]
    assert blocks[0].text == "echo one\n"
    assert blocks[2].text == "curl -s x\n```\nstill inside\n"


@pytest.mark.parametrize(
    "text",
    [
        "<!-- doc-test: skip -->\n```bash\nx\n```\n",  # no reason
        "<!-- doc-test: skip:    -->\n```bash\nx\n```\n",
        "<!-- doc-test: skp: typo -->\n```bash\nx\n```\n",
        "<!-- doc-test: expect-status 4xx -->\n```bash\nx\n```\n",
        "<!-- doc-test: skip: why -->\nsome text\n```bash\nx\n```\n",  # not right above
        "<!-- doc-test: skip: why -->\n```python\nx\n```\n",  # not a shell block
        "text\n<!-- doc-test: skip: why -->\n",  # above nothing
    ],
)
def test_a_marker_that_could_hide_an_example_by_mistake_is_an_error(
    tmp_path: Path, text: str
) -> None:
    with pytest.raises(MarkerError, match=r"doc\.md:"):
        shell_blocks(write(tmp_path, text))


def test_a_failing_command_stops_the_run_and_names_its_block(tmp_path: Path) -> None:
    doc = "```bash\necho first\n```\n\n```bash\nfalse\necho never\n```\n\n```bash\necho x\n```\n"
    blocks = shell_blocks(write(tmp_path, doc))
    run = run_blocks(blocks, tmp_path, dict(os.environ))
    assert run.returncode == 1
    assert [(r.reached, r.finished) for r in run.runs] == [
        (True, True),
        (True, False),
        (False, False),
    ]
    assert run.runs[0].stdout.strip() == "first" and "never" not in run.runs[1].stdout
    assert "doc.md:5: a command failed" in run.report()
    assert "doc.md:1" not in run.report() and "doc.md:10" not in run.report()


def test_an_unset_variable_fails_the_block(tmp_path: Path) -> None:
    blocks = shell_blocks(write(tmp_path, "```bash\necho $NOT_SET_ANYWHERE\n```\n"))
    env = {k: v for k, v in os.environ.items() if k != "NOT_SET_ANYWHERE"}
    assert "a command failed" in run_blocks(blocks, tmp_path, env).report()


def test_output_files_and_their_audio_are_checked(tmp_path: Path) -> None:
    doc = "```bash\ncurl -s -o out.wav x \\\n  --output 'b.mp3' | cat\n```\n"
    assert output_files(shell_blocks(write(tmp_path, doc))[0]) == ["out.wav", "b.mp3"]
    (tmp_path / "out.wav").write_bytes(b'{"error": {"code": "audio_not_ready"}}')
    assert "is not wav audio" in str(audio_problem(tmp_path / "out.wav"))
    (tmp_path / "out.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    assert audio_problem(tmp_path / "out.wav") is None
    assert "was not written" in str(audio_problem(tmp_path / "b.mp3"))
