"""Ending every process of a POSIX session: how the Ray engine makes sure nothing of a job outlives it.

The Ray driver of a batch job runs in a child process that leads a session of its own
(``start_new_session=True``). Everything Ray starts for a local instance (GCS, raylet, the agents, the
workers) descends from it and stays in that session, even the processes that change their process group
(Ray's workers) or outlive their parent (the agents, reparented to init when the raylet dies). So
:func:`end_session` finds them all by session id and ends them: SIGTERM, a short grace, then SIGKILL.

Only a session whose leader we started is ever swept: :func:`own_session` refuses any other (the user's
terminal session, above all).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PROC = Path("/proc")


def supported() -> bool:
    """Sessions can be swept here (POSIX: ``os.getsid`` and ``start_new_session``)."""
    return os.name == "posix" and hasattr(os, "getsid")


def _all_pids() -> list[int]:
    if _PROC.is_dir():
        return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]
    try:  # macOS and other BSDs: no /proc
        out = subprocess.run(["ps", "-A", "-o", "pid="], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        log.debug("cannot list processes", exc_info=True)
        return []
    return [int(x) for x in out.stdout.split() if x.isdigit()]


def _zombie(pid: int) -> bool:
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``, this process excluded."""
    me = os.getpid()
    out = []
    for pid in _all_pids():
        if pid == me:
            continue
        try:
            if os.getsid(pid) != sid:
                continue
        except OSError:  # gone, or not ours to see
            continue
        if not _zombie(pid):
            out.append(pid)
    return out


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(sid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    left = session_members(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_members(sid)
    return left


def end_session(sid: int, grace: float = 3.0) -> list[int]:
    """SIGTERM every process of session ``sid`` (this one excepted), SIGKILL what is left after ``grace``
    seconds; returns the processes still alive after that (normally none)."""
    if not supported():
        return []
    left = session_members(sid)
    if not left:
        return []
    log.debug("ending session %d: %s", sid, left)
    _signal_all(left, signal.SIGTERM)
    left = _wait_gone(sid, grace)
    if left:
        log.debug("SIGKILL to %s (still alive %.1f s after SIGTERM)", left, grace)
        _signal_all(left, signal.SIGKILL)
        left = _wait_gone(sid, 5.0)
    if left:
        log.warning("processes %s of session %d are still alive after SIGKILL", left, sid)
    return left


def own_session() -> int | None:
    """This process's session id if it leads that session (started with ``start_new_session``), else None."""
    if not supported():
        return None
    sid = os.getsid(0)
    return sid if sid == os.getpid() else None
