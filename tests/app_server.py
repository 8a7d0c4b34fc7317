"""Start the real web app (``python app.py``) in a subprocess, for the app tests and bench/bench_app.py.

Offline, on a free localhost port, with every cache (ganedit's, Gradio's, HOME) in a scratch folder.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self):
        return self.process.pid

    def log_tail(self, chars=4000):
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url):
    try:
        with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_app(scratch, timeout_s=180, env=None):
    """Yield an AppServer for ``python app.py`` once it answers; stop it afterwards."""
    scratch = Path(scratch)
    for name in ("home", "cache", "gradio", "examples"):
        (scratch / name).mkdir(parents=True, exist_ok=True)
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("GANEDIT_WEIGHTS_DIR", "GANEDIT_HUB_REPO")}
    environment = {
        **inherited,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(scratch / "gradio"),
        "GRADIO_EXAMPLES_CACHE": str(scratch / "examples"),
        "GANEDIT_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "GANEDIT_CACHE": str(scratch / "cache"),
        "HOME": str(scratch / "home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    environment.setdefault("OMP_NUM_THREADS", "1")
    log = scratch / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=scratch, env=environment,
                                   stdout=out, stderr=subprocess.STDOUT)
    server = AppServer(f"http://127.0.0.1:{port}/", process, log)
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode} before answering:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer on {server.url} within {timeout_s} s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
