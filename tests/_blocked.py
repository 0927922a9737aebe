"""Run the command line as on an install without some optional packages (pyarrow, matplotlib...).

A ``sitecustomize.py`` put first on ``PYTHONPATH`` sets ``sys.modules[name] = None`` for each blocked
package, so ``import name`` raises ``ImportError`` in that process and in every process it spawns (the
batch workers), exactly as where the package is not installed. Nothing of ours is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def env_without(folder: Path, *modules: str) -> dict[str, str]:
    """The environment of a process in which ``modules`` cannot be imported."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["import sys", *(f"sys.modules[{m!r}] = None" for m in modules)]
    (folder / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agegender.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
