"""A real `mlflow server` on 127.0.0.1 for the tests, with proxied artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 with proxied artifacts; stop() and start() again on the same port."""

    def __init__(self, backend_uri: str, artifacts: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.backend_uri, self.artifacts, self.url = backend_uri, artifacts, f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> "MlflowServer":
        import urllib.request

        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(480):
            try:
                urllib.request.urlopen(self.url + "/health", timeout=1)
                return self
            except OSError:
                assert self.process.poll() is None, "mlflow server exited"
                time.sleep(0.25)
        raise AssertionError("mlflow server did not answer in 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
