import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lowbit():
    """Runs the lowbit binary; returns its CompletedProcess (check=True by default)."""
    binary = os.environ.get("LOWBIT_BIN", str(ROOT / "target" / "release" / "lowbit"))
    if not pathlib.Path(binary).exists():
        pytest.fail(f"lowbit binary not found at {binary}; build it with cargo build --release -p lowbit-cli")

    def run(*args, check=True):
        p = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
        return p

    return run


@pytest.fixture(scope="session")
def models():
    d = pathlib.Path(os.environ.get("LOWBIT_MODELS", pathlib.Path.home() / ".cache" / "lowbit" / "models"))
    return d


def model_or_skip(models, name):
    p = models / name
    if not p.exists():
        pytest.skip(f"{p} not fetched (scripts/fetch-models.sh)")
    return p
