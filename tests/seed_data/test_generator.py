"""The demo generator is data code: it does not import the web application."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_generator_imports_nothing_of_survey() -> None:
    check = "import seed_data.generator, sys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'survey'))"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
