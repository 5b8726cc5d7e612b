"""Running the real `actrl` command as a user does (a subprocess) and checking how it fails."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACTRL = [sys.executable, "-m", "actrl.cli"]


# what third-party imports print on their own (TRL's vLLM version check, vLLM's Triton probe): not ours
FOREIGN_NOISE = ("Triton is installed, but doesn't include CPU backend",)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a command under test: one thread per process (the machine is shared), and
    third-party UserWarnings off (TRL warns about the installed vLLM version on import)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONWARNINGS": "ignore::UserWarning", **extra}


def own_lines(stderr: str) -> list[str]:
    """stderr without FOREIGN_NOISE lines."""
    return [line for line in stderr.strip().splitlines() if not line.startswith(FOREIGN_NOISE)]


def actrl(*args: str, cwd: Path | None = None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ACTRL, *map(str, args)], cwd=cwd or ROOT, env=cli_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def snapshot(*roots: Path) -> dict[str, str]:
    """Path -> content hash of every file under `roots` (to show that nothing existing changed)."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def assert_one_line_error(proc: subprocess.CompletedProcess, prefix: str, *needles: str, rc: int = 2) -> str:
    """Exit code `rc`, stderr exactly one line starting with `prefix` and holding every needle, no traceback."""
    lines = own_lines(proc.stderr)
    err = "\n".join(lines)
    assert proc.returncode == rc, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert err.startswith(prefix), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err
