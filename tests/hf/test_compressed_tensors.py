"""compressed-tensors checkpoints against the real readers.

lowbit writes every scheme it supports; transformers (with compressed-tensors) loads each folder,
its decompressed weights must equal lowbit's reading of the same folder bit for bit, and its
log-probabilities on WikiText-2 windows must match lowbit's engine running the folder (W8A8:
both apply the folder's int8 activation rounding). The other way round, folders written by
llm-compressor itself from SmolLM2 exported with `lowbit export-hf` load and run in lowbit with
the same results. Every comparison prints its largest difference (pytest -s shows them).
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

import logprobs

ROOT = pathlib.Path(__file__).resolve().parents[2]

CTX, CHUNKS = 128, 2

# scheme → extra `lowbit quantize` arguments (--calib-chunks: the scheme is given --calib too).
# SmolLM2's rows of 576 take groups of 64, not 128.
LOWBIT_SCHEMES = {
    "w4a16-g64": [],
    "w4a16-g64-asym": ["--method", "gptq", "--calib-chunks", "8"],
    "w8a16": [],
    "w8a8": ["--calib-chunks", "8"],
    "w8a8-dynamic": ["--smoothquant", "0.5", "--calib-chunks", "8"],
}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("hf")


@pytest.fixture(scope="session")
def exported(lowbit, smollm2, work):
    """SmolLM2 as a float HF folder, as llm-compressor's users would start from it."""
    out = work / "smollm2-hf"
    lowbit("export-hf", smollm2, out)
    return out


@pytest.fixture(scope="session")
def token_ids(exported, eval_text, work):
    return make_token_ids(exported, eval_text, work / "ids.txt")


def make_token_ids(folder, eval_text, path):
    """CHUNKS windows of CTX WikiText-2 test tokens by the folder's tokenizer, each opened by BOS
    (what lowbit's perplexity puts there), written for `--token-ids`."""
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok(eval_text.read_text()[:20000])["input_ids"]
    bos = tok.bos_token_id
    chunks = []
    for c in range(CHUNKS):
        w = ids[c * CTX:(c + 1) * CTX]
        chunks.append([bos] + w[1:])
    path.write_text(" ".join(str(t) for w in chunks for t in w))
    return path, chunks


def lowbit_reading(lowbit, folder, work):
    """lowbit's dequantized weights of `folder`, by HF name (float GGUF → HF folder)."""
    deq = work / f"{folder.name}.deq.gguf"
    hf = work / f"{folder.name}.deq-hf"
    if not hf.exists():
        lowbit("dequantize", folder, deq, "--type", "F32")
        lowbit("export-hf", deq, hf)
    f = safe_open(str(hf / "model.safetensors"), "np")
    return {k: f.get_tensor(k) for k in f.keys()}


def quantized_modules(folder):
    f = safe_open(str(folder / "model.safetensors"), "np")
    return sorted(k[: -len(".weight_scale")] for k in f.keys() if k.endswith(".weight_scale"))


def load_transformers(folder):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    return model


def transformers_logprobs(model, chunks):
    out = []
    with torch.no_grad():
        for w in chunks:
            logits = model(torch.tensor([w])).logits[0].float()
            out.append(torch.log_softmax(logits, -1)[CTX // 2: CTX - 1].numpy())
    return np.stack(out)


def noise_floor(model, chunks):
    """How far the model moves from itself when its first layer's input is perturbed by 1e-5
    relative noise. int8 activations make SmolLM2 chaotic: the largest value of a token sits on a
    rounding tie under per-token scales, clipped static ranges saturate, and either flips with the
    last bit of a float sum, so two correct engines agree only to this floor, not to float
    precision."""
    gen = torch.Generator().manual_seed(0)
    hook = model.model.layers[0].register_forward_pre_hook(
        lambda mod, args: (args[0] * (1 + 1e-5 * torch.randn(args[0].shape, generator=gen)),))
    try:
        moved = transformers_logprobs(model, chunks)
    finally:
        hook.remove()
    base = transformers_logprobs(model, chunks)
    d = np.abs(moved - base)[base > -12.0]
    return d.mean()


def compare_logprobs(lowbit, folder, model, token_ids, eval_text, work):
    path, chunks = token_ids
    lp_file = work / f"{folder.name}.lp"
    lowbit("perplexity", "--model", folder, "--file", eval_text, "--token-ids", path, "--ctx", CTX,
           "--chunks", CHUNKS, "--save-logits", lp_file, "--activations", "f32", "--threads", 2)
    tokens, ours = logprobs.read(lp_file)
    theirs = transformers_logprobs(model, chunks)
    assert ours.shape == theirs.shape
    # f16 storage rounds lowbit's log-probabilities by up to 2^-11 relative: compare the
    # likely tokens (log-probability above -12), where that is at most 0.004.
    mask = theirs > -12.0
    diff = np.abs(ours - theirs)[mask]
    top1 = float(np.mean(ours.argmax(-1) == theirs.argmax(-1)))
    print(f"\n{folder.name}: largest |Δ log p| {diff.max():.4f} (mean {diff.mean():.2e}) over {mask.sum()} entries, top-1 agreement {top1:.4f}")
    return diff.max(), diff.mean(), top1


@pytest.fixture(scope="session")
def lowbit_folders(lowbit, smollm2, calib_text, work):
    out = {}
    for scheme, extra in LOWBIT_SCHEMES.items():
        folder = work / f"lowbit-{scheme}"
        args = ["quantize", smollm2, folder, "--scheme", scheme, "--threads", 2, "--json"]
        if any(a == "--calib-chunks" for a in extra):
            args += ["--calib", calib_text]
        out[scheme] = (folder, json.loads(lowbit(*args, *extra).stdout))
    return out


def llmcompressor_folder(exported, out, scheme, calib_text, n_windows=8):
    """Runs llm-compressor's oneshot on the exported float folder through scripts/llmc-quantize.py
    (RTN for weight-only schemes, its GPTQ for "gptq-" schemes), tokenizer saved beside it."""
    if not out.exists():
        args = [sys.executable, str(ROOT / "scripts" / "llmc-quantize.py"), str(exported), str(out), scheme]
        if scheme.startswith("gptq-") or scheme == "w8a8":
            args += ["--calib", str(calib_text), "--windows", str(n_windows)]
        subprocess.run(args, check=True, capture_output=True)
    return out


# "gptq-group-": GPTQ with act-order ("weight": groups stay contiguous; compressed-tensors 0.19
# removed "group", whose weight_g_idx the reader also applies: see linear.rs).
LLMC_SCHEMES = ["w4a16-g64", "w4a16-g64-asym", "gptq-w4a16-g64", "gptq-group-w4a16-g64", "w8a8", "w8a8-dynamic"]


@pytest.fixture(scope="session")
def llmc_folders(exported, calib_text, work):
    return {s: llmcompressor_folder(exported, work / f"llmc-{s}", s, calib_text) for s in LLMC_SCHEMES}


def check_folder(folder, lowbit, token_ids, eval_text, work, expect_modules, activations):
    """The shared checks: transformers' decompressed weights are lowbit's reading bit for bit,
    and lowbit's engine running the folder gives transformers' log-probabilities."""
    cfg = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert cfg["quant_method"] == "compressed-tensors"
    model = load_transformers(folder)
    max_diff, mean_diff, top1 = compare_logprobs(lowbit, folder, model, token_ids, eval_text, work)
    # After a forward pass the modules hold decompressed float weights.
    state = model.state_dict()
    ours = lowbit_reading(lowbit, folder, work)
    modules = quantized_modules(folder)
    assert len(modules) == expect_modules
    for m in modules:
        w = state[f"{m}.weight"]
        assert w.dtype == torch.float32, f"{m}: transformers kept {w.dtype}"
        a, b = w.numpy(), ours[f"{m}.weight"]
        assert a.shape == b.shape
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"{m}: {np.abs(a - b).max()}"
    if activations:
        floor = noise_floor(model, token_ids[1])
        print(f"{folder.name}: transformers' own noise floor (1e-5 input perturbation): mean |Δ log p| {floor:.2e}")
        assert mean_diff <= 1.5 * floor + 0.01, (mean_diff, floor)
    else:
        # Weight-only: the engines agree to the f16 precision lowbit stores log-probabilities in.
        assert max_diff < 0.01, max_diff
        assert top1 >= 0.98, top1


@pytest.mark.parametrize("scheme", list(LOWBIT_SCHEMES))
def test_transformers_loads_lowbit_folders_bit_for_bit(scheme, lowbit_folders, lowbit, token_ids, eval_text, work):
    folder, report = lowbit_folders[scheme]
    assert report["modules"] == 210
    check_folder(folder, lowbit, token_ids, eval_text, work, 210, "w8a8" in scheme)


def test_transformers_loads_a_lowbit_gemma3_folder(lowbit, gemma3, eval_text, work):
    """Gemma-3 (no Q/K permutation, norms stored as w for 1 + w): W4A16 g128 by round to
    nearest, 126 modules."""
    folder = work / "lowbit-gemma3-w4a16-g128"
    if not folder.exists():
        lowbit("quantize", gemma3, folder, "--scheme", "w4a16-g128", "--threads", 2)
    ids = make_token_ids(folder, eval_text, work / "gemma3-ids.txt")
    check_folder(folder, lowbit, ids, eval_text, work, 126, False)


@pytest.mark.parametrize("scheme", LLMC_SCHEMES)
def test_lowbit_runs_llmcompressor_folders(scheme, llmc_folders, lowbit, token_ids, eval_text, work):
    check_folder(llmc_folders[scheme], lowbit, token_ids, eval_text, work, 210, "w8a8" in scheme)


def test_unsupported_configs_are_named_and_nothing_is_written(lowbit_folders, lowbit, smollm2, work, eval_text):
    src, _ = lowbit_folders["w4a16-g64"]
    bad = work / "bad-config"
    if not bad.exists():
        bad.mkdir()
        for f in src.iterdir():
            (bad / f.name).symlink_to(f)
        (bad / "config.json").unlink()
    cfg = json.loads((src / "config.json").read_text())
    cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["strategy"] = "block"
    (bad / "config.json").write_text(json.dumps(cfg))
    p = lowbit("perplexity", "--model", bad, "--file", eval_text, "--chunks", 1, check=False)
    assert p.returncode != 0
    assert 'weights.strategy = "block"' in p.stderr, p.stderr
    out = work / "never-written"
    p = lowbit("quantize", smollm2, out, "--scheme", "w8a8", check=False)
    assert p.returncode != 0 and "--calib" in p.stderr, p.stderr
    assert not out.exists()
    p = lowbit("quantize", smollm2, out, "--scheme", "w4a16-g128", check=False)
    assert p.returncode != 0 and "576" in p.stderr, p.stderr
    assert not out.exists()
