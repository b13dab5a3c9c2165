"""Run a locustfile headless in a subprocess.

A subprocess, not Locust in-process: Locust runs on gevent and monkey-patches the standard
library at import, which the orchestrator (plain blocking HTTP, subprocess management) and
pytest must not inherit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class LocustFailed(RuntimeError):
    pass


def run_locust(
    locustfile: Path,
    *,
    host: str,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    extra: Sequence[str] = (),
) -> int:
    """Run to the end of the shape; returns Locust's exit code (1 when some request was a
    Locust failure, which the caller reports rather than treats as fatal)."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        host,
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "2",
        *extra,
    ]
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    with log_path.open("wb") as log:
        try:
            completed = subprocess.run(
                command,
                cwd=REPO,
                env={**os.environ, **env, "PYTHONPATH": pythonpath},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocustFailed(
                f"locust did not finish within {timeout:.0f} s; see {log_path}"
            ) from exc
    if completed.returncode not in (0, 1):
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise LocustFailed(f"locust exited with {completed.returncode}:\n{tail}")
    return completed.returncode
