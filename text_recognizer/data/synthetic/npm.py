"""`npm pack`: how the font pool and the text corpus fetch their packages by name."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

TIMEOUT_S = 300


def pack(npm: str, packages: Sequence[str], destination: Path) -> str | None:
    """Pack `packages` (`name@version`) into `destination`; None on success, else why it
    failed, in one line."""
    command = [npm, "pack", "--silent", "--pack-destination", str(destination), *packages]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"npm pack exited with {result.returncode}"
