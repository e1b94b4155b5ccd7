#!/usr/bin/env python3
"""Runs a docdsa command with --json and validates its output against a JSON schema.

Usage: validate_json.py SCHEMA [--expect-exit N] [--check PYTHON_EXPR] -- COMMAND...
The schema's relative $refs resolve beside it. --check evaluates an expression over the
parsed output `j` that must be true (e.g. "j['answers'][1]['reused_tokens'] > 0")."""
import json
import os
import subprocess
import sys

import jsonschema
from jsonschema import RefResolver


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    opts, cmd = args[:sep], args[sep + 1:]
    schema_path = opts[0]
    expect, checks = 0, []
    i = 1
    while i < len(opts):
        if opts[i] == "--expect-exit":
            expect = int(opts[i + 1])
            i += 2
        elif opts[i] == "--check":
            checks.append(opts[i + 1])
            i += 2
        else:
            sys.exit(f"unknown option {opts[i]}")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"exit status {p.returncode}, expected {expect}\nstderr:\n{p.stderr[-3000:]}")
    j = json.loads(p.stdout)
    with open(schema_path) as f:
        schema = json.load(f)
    base = "file://" + os.path.dirname(os.path.abspath(schema_path)) + "/"
    jsonschema.validate(j, schema, resolver=RefResolver(base, schema))
    for c in checks:
        if not eval(c, {"j": j}):
            sys.exit(f"check failed: {c}\noutput:\n{json.dumps(j, indent=1)[:4000]}")
    print("valid:", schema_path)


if __name__ == "__main__":
    main()
