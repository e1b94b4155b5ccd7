#!/usr/bin/env python3
"""Writes the llama.cpp oracle fixtures the engine tests compare against:

  tests/fixtures/tokenizer_smollm2.json  token ids of 200+ strings (edge cases and corpus passages)
  tests/fixtures/generation_smollm2.json greedy 32-token continuations of 24 prompts, and the
                                         top-10 logits at chosen positions of each

All from llama.cpp (llama-cpp-python, pinned in setup_oracle.sh) on the default model.
Run: scripts/oracle/setup_oracle.sh && .venv-oracle/bin/python scripts/oracle/make_fixtures.py
     [--model PATH] [--corpus ../shared/corpus]
The output is data: commit it. Re-running with the same model and oracle version gives the
same files."""
import argparse
import glob
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EDGE_CASES = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t\tx", "a  b   c    d",
    "Hello", "Hello world", " Hello world", "Hello  world", "hello\nworld", "Hello, world!",
    "It's", "it's", "IT'S", "they're", "we've", "I'm", "you'll", "he'd", "don't", "'s", "''",
    "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "-42", "0x1F", "v2.0.1",
    "2024-11-22T17:57:40Z", "$100.00", "50%", "1st 2nd 3rd 4th", "①②③", "½ ¾", "Ⅻ", "٣٤٥",
    "café", "naïve", "Ångström", "straße", "ÀÉÎÕÜ", "ﬁ ligature", "e\u0301",
    "你好", "你好世界", "日本語のテキスト", "한국어 텍스트", "こんにちは、世界！", "中文，标点。",
    "Привет, мир!", "Γειά σου Κόσμε", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "😀", "😀😃😄", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "I ❤️ NY", "✓ done ✗ failed", "→ ← ↑ ↓",
    "def f(x):\n    return x * 2\n", "int main() { return 0; }", "for (int i = 0; i < n; ++i) {}",
    "if (a && b || !c) { x += 1; }", "<html><body>hi</body></html>", "SELECT * FROM t WHERE id = 1;",
    "```python\nprint('hi')\n```", "   indented\n      more", "a\tb\tc", "key: value\n- item",
    "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\System32", "/usr/bin/env",
    "<|im_start|>user\nHi<|im_end|>\n", "<|im_start|>assistant\n", "<|endoftext|>", "text<|im_end|>text",
    "<|im_start|><|im_end|>", "<repo_name>x<file_sep>", "< |im_start| >", "<|im_start",
    "!!!", "???", "...", "—", "–", "…", "«quotes»", "“smart quotes”", "‘single’", "(parens) [brackets] {braces}",
    "#hashtag @mention", "snake_case camelCase PascalCase kebab-case", "ALLCAPS WORDS", "MiXeD CaSe",
    "a" * 50, "ab" * 40, " " * 20 + "x", "\n" * 5 + "y", "x" + " " * 7, "tab\tand space ", "trailing   ",
    "\u00a0nbsp", "zero\u200bwidth", "\u3000ideographic space", "line\u2028separator",
]


def corpus_passages(corpus, n, rng):
    files = sorted(glob.glob(os.path.join(corpus, "haystack", "PaulGrahamEssays", "*.txt")))
    files += sorted(glob.glob(os.path.join(corpus, "qa", "quality", "articles", "*.txt")))
    files += sorted(glob.glob(os.path.join(corpus, "transcripts", "**", "*.srt"), recursive=True))
    files += sorted(glob.glob(os.path.join(corpus, "transcripts", "**", "*.vtt"), recursive=True))
    files += sorted(glob.glob(os.path.join(corpus, "transcripts", "**", "*.txt"), recursive=True))
    texts = []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                t = fh.read()
        except (UnicodeDecodeError, OSError):
            continue
        if len(t) > 200:
            texts.append((os.path.relpath(f, corpus), t))
    out = []
    for i in range(n):
        name, t = texts[i % len(texts)]
        length = rng.choice([40, 120, 300, 800, 2000])
        start = rng.randrange(0, max(1, len(t) - length))
        out.append({"source": name, "text": t[start:start + length]})
    return out


RAW_PROMPTS = [
    "The quick brown fox",
    "Once upon a time, in a small village,",
    "The capital of France is",
    "def fibonacci(n):",
    "In 1969, Neil Armstrong",
    "The three primary colors are",
    "Water boils at",
    "A list of fruits: apple, banana,",
    "To make a cup of tea, first",
    "The theory of relativity states that",
    "import numpy as np\n",
    "Q: What is 2 + 2?\nA:",
]
CHAT_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a CPU does in one sentence.",
    "List three uses of a paperclip.",
    "What is 12 times 12?",
    "Summarize: The cat sat on the mat. It was warm. The cat slept.",
    "Translate 'good morning' into Spanish.",
    "Who wrote Romeo and Juliet?",
    "Give me a tip for learning to program.",
    "Why is the sky blue?",
    "What does DNA stand for?",
    "Name a planet in our solar system.",
]
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user):
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(ROOT), "shared", "corpus"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    a = ap.parse_args()
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=a.model, n_ctx=2048, n_batch=512, n_threads=os.cpu_count(), logits_all=True,
                verbose=False, seed=0)
    n_vocab = llm.n_vocab()
    rng = random.Random(20261122)

    cases = [{"source": "edge", "text": t} for t in EDGE_CASES] + corpus_passages(a.corpus, 130, rng)
    tok = []
    for c in cases:
        ids = llm.tokenize(c["text"].encode("utf-8"), add_bos=False, special=True)
        tok.append({"source": c["source"], "text": c["text"], "parse_special": True, "ids": ids})
    for t in ["<|im_start|>user", "a<|endoftext|>b", "<|im_end|>", "plain text"]:
        ids = llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)
        tok.append({"source": "edge", "text": t, "parse_special": False, "ids": ids})

    def logits_row(i):
        return np.array(llm.scores[i], dtype=np.float64)

    # llama.cpp's flash-attention mode on the same prompts: how far llama.cpp's two attention
    # implementations are from each other is the yardstick for ours.
    llm_fa = Llama(model_path=a.model, n_ctx=2048, n_batch=512, n_threads=os.cpu_count(), logits_all=True,
                   verbose=False, seed=0, flash_attn=True)

    def greedy(model, prompt_ids):
        model.reset()
        model.eval(prompt_ids)
        out, rows = [], []
        for step in range(32):
            row = np.array(model.scores[len(prompt_ids) + step - 1], dtype=np.float64)
            rows.append(row)
            out.append(int(np.argmax(row)))
            if step < 31:
                model.eval([out[-1]])
        return out, rows

    # Position 0 of every prompt: no attention mixing yet, so the matmul, norm and
    # quantisation paths can be compared exactly.
    first_logits = []
    for p in RAW_PROMPTS[:4]:
        ids = llm.tokenize(p.encode("utf-8"), add_bos=False, special=True)[:1]
        llm.reset()
        llm.eval(ids)
        row = np.array(llm.scores[0], dtype=np.float32)
        top = np.argsort(-row, kind="stable")[:50]
        first_logits.append({"token": ids[0], "top_ids": [int(i) for i in top], "top_logits": [float(row[i]) for i in top]})

    gens = []
    for kind, prompts in (("raw", RAW_PROMPTS), ("chat", CHAT_PROMPTS)):
        for p in prompts:
            text = p if kind == "raw" else chatml(p)
            prompt_ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            llm.reset()
            llm.eval(prompt_ids)
            out, checks = [], []
            for step in range(32):
                pos = len(prompt_ids) + step - 1
                row = logits_row(pos)
                nxt = int(np.argmax(row))
                if step in (0, 8, 16, 31):
                    top = np.argsort(-row, kind="stable")[:10]
                    lse = float(np.log(np.exp(row - row.max()).sum()) + row.max())
                    checks.append({"step": step, "top_ids": [int(i) for i in top],
                                   "top_logits": [float(row[i]) for i in top], "logsumexp": lse})
                out.append(nxt)
                if step < 31:
                    llm.eval([nxt])
            fa_ids, fa_rows = greedy(llm_fa, prompt_ids)
            # Teacher-forced log-prob distance between llama.cpp's two modes at the checks.
            seq = prompt_ids + out[:-1]
            llm_fa.reset()
            llm_fa.eval(seq)
            for chk in checks:
                row = np.array(llm_fa.scores[len(prompt_ids) + chk["step"] - 1], dtype=np.float64)
                lse = float(np.log(np.exp(row - row.max()).sum()) + row.max())
                chk["flash_attn_max_logprob_diff"] = max(
                    abs((row[i] - lse) - (l - chk["logsumexp"])) for i, l in zip(chk["top_ids"], chk["top_logits"]))
            gens.append({"kind": kind, "prompt": text, "prompt_ids": prompt_ids, "greedy_ids": out,
                         "greedy_ids_flash_attn": fa_ids,
                         "greedy_text": llm.detokenize(out).decode("utf-8", errors="replace"), "logit_checks": checks})
            print(f"{kind}: {p[:40]!r} -> {gens[-1]['greedy_text'][:60]!r}", file=sys.stderr)

    meta = {"oracle": f"llama-cpp-python {llama_cpp.__version__}", "model": os.path.basename(a.model),
            "generator": "scripts/oracle/make_fixtures.py"}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tokenizer_smollm2.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "cases": tok}, f, ensure_ascii=False, indent=1)
    with open(os.path.join(a.out, "generation_smollm2.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "n_vocab": n_vocab, "first_position": first_logits, "cases": gens}, f,
                  ensure_ascii=False, indent=1)
    print(f"wrote {len(tok)} tokenizer cases and {len(gens)} generation cases to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
