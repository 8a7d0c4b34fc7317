"""``python -m ganedit`` as a user runs it: a child process from the repository root, one thread. A test helper."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, env=None, timeout=300):
    """Run ``python -m ganedit *args``; ``env`` adds to (or overrides) this process's environment."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganedit", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)
