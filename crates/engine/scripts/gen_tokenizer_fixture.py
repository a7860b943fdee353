#!/usr/bin/env python3
"""Regenerates tests/fixtures/tokenizer_llama.json: llama.cpp's token ids for varied lines and
the whole WikiText-2 test file, for SmolLM2 and Gemma-3. Needs a llama.cpp build (headers and
libllama.so); the Rust tests only read the committed JSON.

usage: gen_tokenizer_fixture.py [LLAMA_CPP_DIR] [MODELS_DIR] [WIKITEXT]
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA = sys.argv[1] if len(sys.argv) > 1 else "/root/llama"
MODELS = sys.argv[2] if len(sys.argv) > 2 else "/root/.cache/lowbit/models"
WIKI = sys.argv[3] if len(sys.argv) > 3 else "/work/shared/data/wikitext2-test.txt"
OUT = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer_llama.json")

MODEL_FILES = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}

# (text, parse_special); every case is tokenized with add_special = true.
CASES = [
    (" = Robert Boulter = \n", False),
    (" The game 's battle system , the BliTZ system , is carried over directly from Valkyira Chronicles . \n", False),
    (" In 2009 , he had 1 @,@ 234 @.@ 5 km² and 3 ½ cups ; 12345678 \n", False),
    ("Hello world! It's, you're, I'M, they'll, we'd, she've.", False),
    ("    four spaces, tab\there,\n\n\nthree newlines \r\n CRLF  ", False),
    ("naïve café, Straße, Ελληνικά, русский, 中文字符, 日本語のテキスト, 한국어", False),
    ("emoji 😀👍🏽 and symbols €£¥ © ™ ∑∫√ → ← ≠ ≤", False),
    ("x=1+2*3/4-5; if(a<b&&c>d){return a^b|~c;} // `code` #tag @user", False),
    ("", False),
    (" ", False),
    ("\n", False),
    ("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", True),
    ("<|im_start|>user\nHi there<|im_end|>", False),
    ("<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n", True),
    ("<bos>literal bos text<eos>", False),
    ("Numbers: 3.14159, 1,000,000, 0x1F, 1e-10, 2024-01-01, ٣٤٥ ६७८", False),
    ("trailing spaces   \n   leading spaces", False),
    ("ALL CAPS WORDS AND MiXeD CaSe wOrDs", False),
    ("a\u00a0non-breaking\u2009thin\u3000ideographic space", False),
    ("unassigned \U000e0080 and private \ue000 and combining e\u0301", False),
    ("Ünïcödé wörds with àccents: déjà vu, façade, jalapeño, Zoë", False),
]


def build(tmp):
    exe = os.path.join(tmp, "llama_tokenize_stdin")
    lib = os.path.join(LLAMA, "build", "bin")
    subprocess.run(
        ["gcc", "-O2", os.path.join(HERE, "llama_tokenize_stdin.c"),
         "-I", os.path.join(LLAMA, "include"), "-I", os.path.join(LLAMA, "ggml", "include"),
         "-L", lib, "-lllama", "-Wl,-rpath," + lib, "-o", exe],
        check=True)
    return exe


def tokenize(exe, model, text, parse_special):
    r = subprocess.run([exe, model, "1", "1" if parse_special else "0"],
                       input=text.encode(), capture_output=True, check=True)
    return [int(x) for x in r.stdout.split()]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        with open(WIKI, encoding="utf-8") as f:
            wiki = f.read()
        out = {"cases": [{"text": t, "parse_special": p} for t, p in CASES], "models": {}}
        for name, file in MODEL_FILES.items():
            model = os.path.join(MODELS, file)
            ids = [tokenize(exe, model, t, p) for t, p in CASES]
            whole = tokenize(exe, model, wiki, False)
            out["models"][name] = {
                "file": file,
                "ids": ids,
                "wikitext_tokens": len(whole),
                "wikitext_first": whole[:64],
                "wikitext_last": whole[-64:],
            }
    text = json.dumps(out, ensure_ascii=False, indent=1)
    # One line per id list keeps the fixture short and diffs readable.
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ",".join(m.group(1).split()).replace(",,", ",") + "]", text)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
