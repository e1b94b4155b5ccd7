#!/usr/bin/env python3
"""Builds a long-input version of a QuALITY-format dataset for `docdsa eval qa`: each article is
placed at half depth inside filler text (the Paul Graham essays of the shared haystack corpus),
padded to --chars characters, so the questions must be answered from a long read.

Usage: scripts/make_long_qa.py OUT_DIR [--dataset ../shared/corpus/qa/quality/quality_subset.json]
                                       [--filler-dir ../shared/corpus/haystack/PaulGrahamEssays]
                                       [--chars 130000]
Writes OUT_DIR/long.json and one text file per article beside it (130000 characters are
30.3-30.6K Qwen2.5 tokens: under its trained 32K)."""
import argparse
import glob
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "corpus")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--dataset", default=os.path.join(SHARED, "qa", "quality", "quality_subset.json"))
    ap.add_argument("--filler-dir", default=os.path.join(SHARED, "haystack", "PaulGrahamEssays"))
    ap.add_argument("--chars", type=int, default=130000)
    a = ap.parse_args()
    src = os.path.dirname(os.path.abspath(a.dataset))
    articles = json.load(open(a.dataset, encoding="utf-8"))
    filler = "\n\n".join(open(f, encoding="utf-8").read() for f in sorted(glob.glob(os.path.join(a.filler_dir, "*.txt"))))
    os.makedirs(a.out_dir, exist_ok=True)
    off = 0  # each article gets the next stretch of filler, so no two share it
    for art in articles:
        text = art["article"] if "article" in art else open(os.path.join(src, art["article_file"]), encoding="utf-8").read()
        need = max(0, a.chars - len(text))
        if off + need > len(filler):
            off = 0
        before, after = filler[off:off + need // 2], filler[off + need // 2:off + need]
        off += need
        long_text = before.rstrip() + "\n\n" + text.strip() + "\n\n" + after.lstrip()
        name = f"{art['id']}_long.txt"
        with open(os.path.join(a.out_dir, name), "w", encoding="utf-8") as f:
            f.write(long_text)
        art.pop("article", None)
        art["article_file"] = name
        art["article_chars"] = len(long_text)
        art["note"] = "article at half depth inside filler text (long-input test)"
    with open(os.path.join(a.out_dir, "long.json"), "w", encoding="utf-8") as f:
        json.dump(articles, f, indent=1)
    print(os.path.join(a.out_dir, "long.json"))


if __name__ == "__main__":
    main()
