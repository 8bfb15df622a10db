"""The short version of `make bench-load`: sustained single-image traffic with zero errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 60


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not installed (make test adds it)")
def test_short_load_run_answers_every_request(tmp_path):
    report = tmp_path / "reliability.md"
    command = [sys.executable, "-m", "bench.load_bench", "--requests", str(REQUESTS)]
    command += ["--out", str(report)]
    subprocess.run(command, check=True, capture_output=True, timeout=300, cwd=REPO)
    figures = report.read_text()
    assert f"| answered 200 | {REQUESTS} of {REQUESTS} | all | yes |" in figures
    assert "| any other answer | none | none | yes |" in figures
