"""A dropserver of our own for a rehearsal: generated config, subprocess, readiness, shutdown."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the harness needs to know about a server: where it is and the platform's secrets."""

    url: str
    platform: str
    api_key: str
    identity_secret: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def config_toml(
    directory: Path,
    port: int,
    platform: str,
    api_key: str,
    identity: str,
    rehearsal_seed: str | None = None,
) -> str:
    # 127.0.0.1 is a trusted proxy so that the simulated clients' X-Forwarded-For addresses
    # (one /24 per human, per bot account) reach the per-IP limits.
    return f"""\
[server]
host = "127.0.0.1"
port = {port}
trusted_proxies = ["127.0.0.1/32"]

[redis]
data_dir = "{directory / "redis"}"

[pow]
secret = "{secrets.token_hex(24)}"
key_signature_secret = "{secrets.token_hex(24)}"

[sweeper]
interval_seconds = 0.2

[[platforms]]
id = "{platform}"
api_keys = ["{api_key}"]
identity_hs256_secret = "{identity}"
""" + (f'\n[rehearsal]\nseed = "{rehearsal_seed}"\n' if rehearsal_seed else "")


class LocalServer:
    """``dropserver serve`` on a free port with an embedded Redis in ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        startup_timeout: float = 30.0,
        rehearsal_seed: str | None = None,
    ) -> None:
        # A rehearsal seed fixes the server's draw seeds and entry ids (reproducible draws).
        self.rehearsal_seed = rehearsal_seed
        self.directory = directory
        self.startup_timeout = startup_timeout
        port = free_port()
        self.deployment = Deployment(
            url=f"http://127.0.0.1:{port}",
            platform="rehearsal",
            api_key="rehearsal-" + secrets.token_hex(16),
            identity_secret=secrets.token_hex(32),
        )
        self.config = directory / "dropserver.toml"
        self.log_path = directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._port = port

    def start(self) -> Deployment:
        d = self.deployment
        self.config.write_text(
            config_toml(
                self.directory,
                self._port,
                d.platform,
                d.api_key,
                d.identity_secret,
                self.rehearsal_seed,
            )
        )
        command = [str(Path(sys.executable).with_name("dropserver")), "serve"]
        if not Path(command[0]).exists():
            command = [sys.executable, "-m", "dropserver", "serve"]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [*command, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        self._wait_ready()
        return d

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dropserver exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.deployment.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"dropserver not ready after {self.startup_timeout} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # graceful: aiohttp shuts down, Redis is stopped
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
