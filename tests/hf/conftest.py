"""Fixtures for the Hugging Face reader tests: the lowbit binary, the real SmolLM2 model and the
calibration text. A missing model or text fails (CI fetches them); LOWBIT_OFFLINE=1 skips."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _need(path, what):
    if not path.exists():
        if os.environ.get("LOWBIT_OFFLINE") == "1":
            pytest.skip(f"{what} {path} missing and LOWBIT_OFFLINE=1")
        pytest.fail(f"{what} {path} missing: run scripts/fetch-models.sh (or see ../shared/data)")
    return path


@pytest.fixture(scope="session")
def lowbit():
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
def smollm2():
    models = pathlib.Path(os.environ.get("LOWBIT_MODELS", pathlib.Path.home() / ".cache" / "lowbit" / "models"))
    return _need(models / "SmolLM2-135M-Instruct.Q4_1.gguf", "model")


@pytest.fixture(scope="session")
def calib_text():
    test = os.environ.get("LOWBIT_WIKITEXT", str(ROOT.parent / "shared" / "data" / "wikitext2-test.txt"))
    return _need(pathlib.Path(test).with_name("wikitext2-valid.txt"), "calibration text")


@pytest.fixture(scope="session")
def eval_text():
    test = os.environ.get("LOWBIT_WIKITEXT", str(ROOT.parent / "shared" / "data" / "wikitext2-test.txt"))
    return _need(pathlib.Path(test), "evaluation text")


@pytest.fixture(scope="session")
def gemma3():
    models = pathlib.Path(os.environ.get("LOWBIT_MODELS", pathlib.Path.home() / ".cache" / "lowbit" / "models"))
    return _need(models / "gemma-3-270m-q4_k_m.gguf", "model")
