"""Whether the lock files were made from pyproject.toml's dependencies as they are now.

``make lock`` compiles the lock files (``requirements-test.lock`` for the venv of ``make``,
``requirements.lock`` for the image) and stamps each with a digest of what they were compiled
from: ``requires-python``, ``[project] dependencies`` and ``[project.optional-dependencies]``.
``make`` checks the stamp before it installs anything, so a dependency added to pyproject.toml
without ``make lock`` fails at once with one line saying so, offline and in milliseconds
(other edits of pyproject.toml, the tool settings, need no new lock).

    python .ci/lock_inputs.py stamp requirements-test.lock requirements.lock
    python .ci/lock_inputs.py check requirements-test.lock requirements.lock
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

STAMP = "# pyproject.toml dependencies sha256: "
"""How a lock file's stamp line begins; the digest follows."""


def digest(pyproject: Path) -> str:
    """The digest of what the lock files are compiled from."""
    project = tomllib.loads(pyproject.read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {
            extra: sorted(requirements)
            for extra, requirements in project.get("optional-dependencies", {}).items()
        },
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def stamped(lock: Path) -> str | None:
    """The digest a lock file was stamped with, if any."""
    for line in lock.read_text().splitlines():
        if line.startswith(STAMP):
            return line.removeprefix(STAMP).strip()
    return None


def stamp(lock: Path, pyproject: Path) -> None:
    """Write (or replace) the stamp line, after the header comment uv wrote."""
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(STAMP)]
    header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(header, STAMP + digest(pyproject))
    lock.write_text("\n".join(lines) + "\n")


def problem(lock: Path, pyproject: Path) -> str | None:
    """Why ``lock`` cannot be installed as it is, or ``None``."""
    if not lock.is_file():
        return f"{lock} is missing; run `make lock`"
    if stamped(lock) != digest(pyproject):
        return (
            f"{lock} is out of date with the dependencies in {pyproject}; "
            "run `make lock` (and commit the lock files)"
        )
    return None


def main(argv: Sequence[str], pyproject: Path = Path("pyproject.toml")) -> int:
    """``stamp`` or ``check`` the lock files named; 0 when they are current, else 1."""
    command, *locks = argv
    if command == "stamp":
        for lock in locks:
            stamp(Path(lock), pyproject)
        return 0
    problems = [found for lock in locks if (found := problem(Path(lock), pyproject))]
    for found in problems:
        sys.stderr.write(f"threadgate: {found}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
