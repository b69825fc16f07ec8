"""The README's Quick start commands work on a fresh copy of the project."""

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_quick_start_has_exactly_two_command_blocks():
    assert len(quick_start_blocks()) == 2


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = quick_start_blocks()[1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_first_quick_start_command_installs_and_runs_the_example(tmp_path):
    copy = tmp_path / "portl"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", ".portl", "*.db", "*.rejects.csv",
                                                               "__pycache__", "*.egg-info", ".pytest_cache", ".data"))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PORTL_STATE_DIR")}
    done = subprocess.run(["bash", "-c", quick_start_blocks()[0]], cwd=copy, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stdout + done.stderr
    assert "succeeded" in summary
    assert re.search(r"inserted\s+18\b", summary) and re.search(r"rejected\s+5\b", summary)
    assert (copy / "examples" / "quickstart" / "customers.db").exists()
    assert len((copy / "examples" / "quickstart" / "customers.rejects.csv").read_text().splitlines()) == 6
