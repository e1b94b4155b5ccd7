#!/usr/bin/env python3
"""Runs llama.cpp (through llama-cpp-python) on the same work as `docdsa bench` — the same
GGUF, thread count and deterministic token sequence — and prints both engines' medians and
their ratio from one run.

Usage: scripts/bench_llamacpp.py [--docdsa build/app/cli/docdsa] [--model PATH] [--threads N]
                                 [--prefill 512,4096] [--depth 0,4096] [--reps 3] [--json]
                                 [--attention dsa|dense]
       scripts/bench_llamacpp.py --long [--long-128k] [--long-decode 8]
         decode steps at depth 8K and 32K (and 128K): docdsa dense vs DSA (`docdsa bench --long`)
         next to llama.cpp (flash attention on) at the same depths, same tokens and threads.
Needs llama-cpp-python: scripts/oracle/setup_oracle.sh installs the pinned version into
.venv-oracle, and this script re-runs itself with that interpreter when it exists."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, ".venv-oracle", "bin", "python")


def bench_tokens(n, n_vocab):
    # Same generator as app/cli/cmd_bench.cpp.
    ids, x = [], 12345
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        ids.append(100 + (x >> 33) % (n_vocab - 100))
    return ids


def llama_bench(model, threads, prefill, depths, decode_tokens, reps):
    import llama_cpp
    from llama_cpp import Llama
    import numpy as np
    out = []
    for n in prefill:
        llm = Llama(model_path=model, n_ctx=n + 8, n_batch=512, n_ubatch=512, n_threads=threads,
                    n_threads_batch=threads, verbose=False)
        ids = bench_tokens(n, llm.n_vocab())
        runs = []
        for _ in range(reps):
            llm.reset()
            llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
            t0 = time.perf_counter()
            llm.eval(ids)
            runs.append(n / (time.perf_counter() - t0))
        out.append({"test": "prefill", "tokens": n, "tokens_per_s": statistics.median(runs), "runs": runs})
        del llm
    for depth in depths:
        llm = Llama(model_path=model, n_ctx=depth + decode_tokens + 8, n_batch=512, n_ubatch=512,
                    n_threads=threads, n_threads_batch=threads, verbose=False)
        ids = bench_tokens(depth + 1, llm.n_vocab())
        runs = []
        for _ in range(reps):
            llm.reset()
            llm._ctx.memory_clear(True) if hasattr(llm._ctx, "memory_clear") else None
            llm.eval(ids)
            t0 = time.perf_counter()
            for _ in range(decode_tokens):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
                nxt = int(np.argmax(logits))
                llm.eval([nxt])
            runs.append(decode_tokens / (time.perf_counter() - t0))
        out.append({"test": "decode", "depth": depth, "tokens": decode_tokens,
                    "tokens_per_s": statistics.median(runs), "runs": runs})
        del llm
    return out


def llama_long(model, threads, depths, steps):
    import llama_cpp
    from llama_cpp import Llama
    out = []
    for depth in depths:
        llm = Llama(model_path=model, n_ctx=depth + steps + 8, n_batch=512, n_ubatch=512, n_threads=threads,
                    n_threads_batch=threads, flash_attn=True, verbose=False)
        ids = bench_tokens(depth + 1, llm.n_vocab())
        t0 = time.perf_counter()
        llm.eval(ids[:depth])
        prefill_s = time.perf_counter() - t0
        ms = []
        for _ in range(steps):
            t0 = time.perf_counter()
            llm.eval([ids[depth]])
            ms.append(1000.0 * (time.perf_counter() - t0))
            # Decode every step at the same depth, like docdsa bench --long.
            llm._ctx.kv_cache_seq_rm(-1, depth, -1)
            llm.n_tokens = depth
        out.append({"depth": depth, "decode_ms": statistics.median(ms), "prefill_seconds": prefill_s})
        del llm
    return out


def llama_build():
    """How the llama.cpp we compare against was built: the CMake flags setup_oracle.sh chose for
    this CPU, and the features llama.cpp itself reports."""
    import llama_cpp
    flags_file = os.path.join(ROOT, ".venv-oracle", "build-flags.txt")
    flags = open(flags_file).read().strip() if os.path.exists(flags_file) else "unknown (not built by setup_oracle.sh)"
    return {"llama_cpp_python": llama_cpp.__version__, "cmake_flags": flags,
            "system_info": llama_cpp.llama_print_system_info().decode().strip()}


def print_build(b):
    print(f"llama.cpp: llama-cpp-python {b['llama_cpp_python']}, built with {b['cmake_flags']}")
    print(f"llama.cpp: {b['system_info']}")


def main_long(a):
    cmd = [a.docdsa, "bench", "--json", "--long", "--model", a.model, "--threads", str(a.threads),
           "--long-decode", str(a.long_decode), "--no-dense-prefill"]
    if a.long_128k:
        cmd.append("--long-128k")
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    depths = [r["depth"] for r in ours["results"] if r["test"] == "decode"]
    theirs = {r["depth"]: r for r in llama_long(a.model, a.threads, depths, a.long_decode)}
    rows = []
    for r in ours["results"]:
        if r["test"] != "decode":
            continue
        t = theirs[r["depth"]]
        rows.append({"depth": r["depth"], "docdsa_dsa_ms": r["dsa_ms"], "docdsa_dense_ms": r["dense_ms"],
                     "llamacpp_ms": t["decode_ms"], "dsa_vs_dense": r["dense_ms"] / r["dsa_ms"],
                     "dsa_vs_llamacpp": t["decode_ms"] / r["dsa_ms"], "llamacpp_prefill_s": t["prefill_seconds"]})
    if a.json:
        print(json.dumps({"model": a.model, "threads": a.threads, "llama_cpp_build": llama_build(), "rows": rows,
                          "docdsa": ours}, indent=2))
        return
    print_build(llama_build())
    print(f"model {a.model}, {a.threads} threads, decode ms/token (median of {a.long_decode} steps)")
    print(f"{'depth':>8}{'docdsa dsa':>12}{'docdsa dense':>14}{'llama.cpp':>11}{'dsa/dense':>11}{'dsa/llama':>11}")
    for r in rows:
        print(f"{r['depth']:>8}{r['docdsa_dsa_ms']:>12.2f}{r['docdsa_dense_ms']:>14.2f}{r['llamacpp_ms']:>11.2f}"
              f"{r['dsa_vs_dense']:>10.2f}x{r['dsa_vs_llamacpp']:>10.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docdsa", default=os.path.join(ROOT, "build", "app", "cli", "docdsa"))
    ap.add_argument("--model", default=os.environ.get("DOCDSA_MODEL", os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prefill", default="512,4096")
    ap.add_argument("--depth", default="0,4096")
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--attention", default="dsa", choices=["dsa", "dense"])
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--long-128k", action="store_true")
    ap.add_argument("--long-decode", type=int, default=8)
    a = ap.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        if os.path.exists(VENV_PY) and sys.executable != VENV_PY:
            os.execv(VENV_PY, [VENV_PY] + sys.argv)
        sys.exit("llama-cpp-python is not installed: run scripts/oracle/setup_oracle.sh first")
    if a.long:
        main_long(a)
        return
    prefill = [int(x) for x in a.prefill.split(",") if x]
    depths = [int(x) for x in a.depth.split(",") if x]
    ours = json.loads(subprocess.run(
        [a.docdsa, "bench", "--json", "--model", a.model, "--threads", str(a.threads), "--prefill", a.prefill,
         "--depth", a.depth, "--decode-tokens", str(a.decode_tokens), "--reps", str(a.reps), "--attention", a.attention],
        check=True, capture_output=True, text=True).stdout)["results"]
    theirs = llama_bench(a.model, a.threads, prefill, depths, a.decode_tokens, a.reps)
    rows = []
    for o, t in zip(ours, theirs):
        name = f"prefill {o['tokens']}" if o["test"] == "prefill" else f"decode @ depth {o['depth']}"
        rows.append({"test": name, "docdsa_tok_s": o["tokens_per_s"], "llamacpp_tok_s": t["tokens_per_s"],
                     "ratio": o["tokens_per_s"] / t["tokens_per_s"]})
    if a.json:
        print(json.dumps({"model": a.model, "threads": a.threads, "reps": a.reps, "llama_cpp_build": llama_build(),
                          "rows": rows}, indent=2))
        return
    print_build(llama_build())
    print(f"model {a.model}, {a.threads} threads, medians of {a.reps} runs")
    print(f"{'test':<22}{'docdsa tok/s':>14}{'llama.cpp tok/s':>17}{'ratio':>8}")
    for r in rows:
        print(f"{r['test']:<22}{r['docdsa_tok_s']:>14.1f}{r['llamacpp_tok_s']:>17.1f}{r['ratio']:>8.2f}")


if __name__ == "__main__":
    main()
