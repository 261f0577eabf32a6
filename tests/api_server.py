"""A real `ledger serve` process on a free loopback port, for the API and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``ledger serve`` on a store, until :meth:`stop`."""

    def __init__(self, store: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        # The server's log goes to a file (a pipe nobody reads would fill and stop it).
        self.log = tempfile.NamedTemporaryFile(prefix="ledger-serve-", suffix=".log",
                                               delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "--store", store, "serve", "--port",
             str(self.port)], cwd=ROOT, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(keep_log=True)
                output = Path(self.log.name).read_text(errors="replace")
                Path(self.log.name).unlink(missing_ok=True)
                raise RuntimeError(f"ledger serve did not start:\n{output}")
            time.sleep(0.1)

    def stop(self, keep_log: bool = False) -> None:
        """Stop the server; its log file is removed unless ``keep_log`` (tests used to leave
        one in the temporary folder per server started)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)

    def errors(self) -> str:
        """The tracebacks the server logged (empty if none)."""
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(block for block in text.split("\nINFO:") if "Traceback" in block)


def ledger(store: str, *argv: str, env: dict[str, str] | None = None) -> str:
    """Run a CLI command on the store, return its standard output."""
    done = subprocess.run([sys.executable, "-m", "cli.main", "--store", store, *argv],
                          cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ledger {' '.join(argv)} failed: {done.stderr}")
    return done.stdout


def token(store: str, role: str, name: str, env: dict[str, str] | None = None) -> str:
    return ledger(store, "token", "create", "--role", role, "--name", name,
                  env=env).strip().splitlines()[-1]
