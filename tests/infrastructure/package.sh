#!/usr/bin/env bash
# `make package`: build the Lambda artifacts with `sam build` (no container), as `sam deploy` will upload them.
#
# Needs a python3.13 interpreter (the functions' runtime; sam's Python builder insists on that exact version) and
# the SAM CLI. The SAM CLI lives in its own virtualenv, .venv-sam, because it pins boto3, click and cfn-lint
# versions the project's .venv must not share; it is created here on first use. Without python3.13 this says so
# and exits non-zero: it never builds with another interpreter.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNTIME=python3.13
SAM_VENV=.venv-sam
BUILD_DIR=.aws-sam/build

fail() {
    echo "make package: $*" >&2
    exit 1
}

# 1. A python3.13 interpreter, from PATH or from pyenv (whose shim only answers for the active version).
python_bin="$(tests/infrastructure/python313.sh)" || python_bin=""
if [ -z "$python_bin" ]; then
    fail "no $RUNTIME interpreter found (looked on PATH and in pyenv versions).
  sam build needs the functions' runtime, $RUNTIME, to install their dependencies.
  Install Python 3.13 (e.g. 'pyenv install 3.13') or put $RUNTIME on PATH, then run 'make package' again.
  Nothing was built."
fi
# sam looks the runtime up by name on PATH.
PATH="$(dirname "$python_bin"):$PATH"
export PATH
echo "make package: using $python_bin ($("$python_bin" --version))"

# 2. The SAM CLI: on PATH, or in its own virtualenv (created on first use).
sam_bin=""
if [ -x "$SAM_VENV/bin/sam" ]; then
    sam_bin="$SAM_VENV/bin/sam"
elif command -v sam >/dev/null 2>&1; then
    sam_bin="$(command -v sam)"
else
    host_python="${PYTHON:-python3}"
    command -v "$host_python" >/dev/null 2>&1 || fail "no $host_python to create $SAM_VENV for the SAM CLI"
    echo "make package: installing the SAM CLI into $SAM_VENV (first run only)"
    "$host_python" -m venv "$SAM_VENV" || fail "could not create $SAM_VENV"
    log="$(mktemp)"
    if ! "$SAM_VENV/bin/python" -m pip install --quiet aws-sam-cli >"$log" 2>&1; then
        tail -20 "$log" >&2
        rm -rf "$SAM_VENV"
        fail "could not install aws-sam-cli into $SAM_VENV (no package index reachable?). Nothing was built."
    fi
    rm -f "$log"
    sam_bin="$SAM_VENV/bin/sam"
fi
echo "make package: using $("$sam_bin" --version)"

# 3. Build. No telemetry, no container (none is needed for pure-Python dependencies on arm64 wheels).
export SAM_CLI_TELEMETRY=0
"$sam_bin" build --template-file template.yaml --build-dir "$BUILD_DIR" --no-cached

# 4. Say what was built, and check each function got its code and its dependencies.
for function in IntakeFunction PollFunction RecordFunction NotifyFunction; do
    dir="$BUILD_DIR/$function"
    [ -d "$dir/flexrestore" ] || fail "$dir has no flexrestore package"
    for dependency in aws_lambda_powertools httpx pydantic; do
        [ -d "$dir/$dependency" ] || fail "$dir lacks $dependency (src/requirements.txt)"
    done
    echo "make package: $function -> $dir ($(du -sh "$dir" | cut -f1))"
done
echo "make package: done. Deploy with: sam deploy --guided --template-file $BUILD_DIR/template.yaml"
