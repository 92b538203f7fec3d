from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("lock_inputs", ROOT / ".ci" / "lock_inputs.py")
assert _spec is not None
assert _spec.loader is not None
lock_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_inputs)
STAMP, main = lock_inputs.STAMP, lock_inputs.main
LOCKS = ("requirements-test.lock", "requirements.lock")


def test_the_committed_lock_files_are_current_with_pyproject() -> None:
    assert main(["check", *(str(ROOT / lock) for lock in LOCKS)], ROOT / "pyproject.toml") == 0


def test_a_dependency_added_without_make_lock_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    shutil.copy(ROOT / "pyproject.toml", pyproject)
    lock = tmp_path / "requirements.lock"
    shutil.copy(ROOT / "requirements.lock", lock)
    assert main(["check", str(lock)], pyproject) == 0

    # A tool setting is not an input of the lock.
    pyproject.write_text(pyproject.read_text().replace("line-length = 100", "line-length = 99"))
    assert main(["check", str(lock)], pyproject) == 0

    text = pyproject.read_text()
    pyproject.write_text(
        text.replace('    "rich>=13",\n', '    "rich>=13",\n    "python-dotenv>=1",\n')
    )
    assert main(["check", str(lock), str(tmp_path / "absent.lock")], pyproject) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"threadgate: {lock} is out of date with the dependencies in {pyproject}; "
        "run `make lock` (and commit the lock files)",
        f"threadgate: {tmp_path / 'absent.lock'} is missing; run `make lock`",
    ]

    assert main(["stamp", str(lock)], pyproject) == 0
    assert main(["check", str(lock)], pyproject) == 0
    stamps = [line for line in lock.read_text().splitlines() if line.startswith(STAMP)]
    assert len(stamps) == 1, "a new stamp replaces the old one"
    assert lock.read_text().splitlines()[2].startswith(STAMP), "after uv's header"
