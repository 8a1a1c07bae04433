#!/usr/bin/env bash
# Prints the path of a python3.13 interpreter (the Lambda functions' runtime) and exits 0, or prints nothing and
# exits 1. Looks on PATH first, then in pyenv's versions (pyenv's shim only answers for the active version).
# Used by `make package`, `make lock` and `make test-runtime`.
set -uo pipefail

RUNTIME=python3.13

if command -v "$RUNTIME" >/dev/null 2>&1 && "$RUNTIME" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    command -v "$RUNTIME"
    exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    found=""
    for candidate in "$(pyenv root)"/versions/3.13*/bin/"$RUNTIME"; do
        if [ -x "$candidate" ]; then found="$candidate"; fi
    done
    if [ -n "$found" ]; then
        echo "$found"
        exit 0
    fi
fi
exit 1
