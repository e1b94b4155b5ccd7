#!/usr/bin/env python3
"""Counts repetition in what docdsa generated: the most times any 4-gram of words occurs in an
answer or summary (lower case, punctuation at word ends dropped), with the stop reason.

  repetition.py [--max N] [--stop REASON] [--label TEXT] -- DOCDSA_COMMAND... --json
      Runs one `docdsa ask|summarize --json` command and reports each answer or summary.
      --max N: fail (exit 1) when a 4-gram occurs more than N times; --stop REASON: fail when
      an answer or summary stopped for another reason (e.g. "eos": the model ended it, not the
      token limit).
  repetition.py --demo --docdsa BIN --model MODEL [--max N] [--stop REASON] [-- EXTRA_OPTIONS...]
      The demo's questions (scripts/demo.sh): summaries of resources/demo and its question
      over the Bostock transcript, in a temporary library; EXTRA_OPTIONS go to both commands
      (e.g. --dry-multiplier 0 --no-repeat-ngram 0 for no repetition control).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_QUESTION = "What is the case about, and what does Ms. Karlan argue?"


def words(text):
    out = []
    for w in text.lower().split():
        w = re.sub(r"^\W+|\W+$", "", w)
        if w:
            out.append(w)
    return out


def max_ngram(text, n=4):
    """(count, ngram) of the most frequent word n-gram; (0, '') when the text is shorter."""
    w = words(text)
    c = collections.Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    if not c:
        return 0, ""
    g, k = c.most_common(1)[0]
    return k, " ".join(g)


def items(j):
    """(label, text, stop_reason) of each answer (ask --json) or summary (summarize --json)."""
    for a in j.get("answers", []):
        yield a.get("question", ""), a.get("answer", ""), a.get("stop_reason", "")
    for r in j.get("files", []):
        if "summary" in r:
            yield os.path.basename(r.get("path", "")), r["summary"], r.get("stop_reason", "")


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"exit status {p.returncode}: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout)


def report(rows, args):
    bad = 0
    for label, text, stop in rows:
        k, g = max_ngram(text)
        fail = (args.max is not None and k > args.max) or bool(args.stop and stop != args.stop)
        bad += fail
        print(f"{'FAIL' if fail else 'ok  '} {args.label}max4gram={k} stop={stop or '-'} words={len(words(text))} "
              f"[{label[:50]}] most repeated: \"{g}\"")
        if args.verbose or fail:
            print("     " + text.replace("\n", "\n     "))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max", type=int)
    ap.add_argument("--stop")
    ap.add_argument("--label", default="")
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--docdsa")
    ap.add_argument("--model")
    ap.add_argument("--question", default=DEMO_QUESTION)
    ap.add_argument("-v", "--verbose", action="store_true")
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    args = ap.parse_args(argv)
    if args.label:
        args.label += " "
    rows = []
    if not args.demo:
        if not rest:
            sys.exit("no command after --")
        rows = list(items(run(rest)))
    else:
        if not args.docdsa or not args.model:
            sys.exit("--demo needs --docdsa and --model")
        with tempfile.TemporaryDirectory(prefix="docdsa-repetition-") as tmp:
            db = os.path.join(tmp, "library.sqlite")
            demo = os.path.join(ROOT, "resources", "demo")
            rows += items(run([args.docdsa, "summarize", "--json", "--force", "--db", db, "--model", args.model, *rest, demo]))
            rows += items(run([args.docdsa, "ask", "--json", "--db", db, "--model", args.model, "-n", "96", *rest,
                     os.path.join(demo, "bostock-v-clayton-county-opening.srt"), args.question]))
    if not rows:
        sys.exit("no answer or summary in the output")
    sys.exit(1 if report(rows, args) else 0)


if __name__ == "__main__":
    main()
