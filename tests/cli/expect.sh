#!/bin/sh
# Usage: expect.sh CODE REGEX COMMAND [ARGS...]
# Runs COMMAND, shows what it printed, and passes only when it exits with CODE and its output
# (stdout and stderr together) matches the extended regular expression REGEX, which may span
# lines. ctest's PASS_REGULAR_EXPRESSION alone ignores the exit status, so a program that
# printed the right words and then crashed (134, 139) would pass; here it cannot.
code=$1 re=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq "$code" ] || { echo "expect: exit status $rc, wanted $code"; exit 1; }
printf '%s' "$out" | grep -Ezq -- "$re" || { echo "expect: the output does not match: $re"; exit 1; }
echo "expect: ok (exit $rc)"
