"""Run the real service in a subprocess on loopback (for tests and the load benchmark)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``powercheck serve`` child process."""

    proc: subprocess.Popen
    url: str
    token: str
    log_path: Path
    log_file: IO[str] | None = None

    def client(self, token: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run (a crash)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self.log_file is not None and not self.log_file.closed:
            self.log_file.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def start_server(
    db: Path,
    token: str,
    *,
    cache_dir: Path | None = None,
    grid: Path | None = None,
    chunk_size: int = 256,
    startup_timeout: float = 300.0,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
) -> ServerProcess:
    """Start ``python -m powercheck serve`` on a free loopback port and wait for /healthz."""
    port = free_port()
    env = dict(os.environ, POWERCHECK_API_TOKENS=f"tester:{token}")
    cmd = [
        sys.executable,
        "-m",
        "powercheck",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
        "--chunk-size",
        str(chunk_size),
        "-q",
    ]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    if grid is not None:
        cmd += ["--grid", str(grid)]
    cmd += list(extra_args or [])
    log_path = log_path or db.with_suffix(f".{port}.log")
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop()/kill()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(proc, url, token, log_path, log)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not become healthy in {startup_timeout} s:\n{server.log()}")
