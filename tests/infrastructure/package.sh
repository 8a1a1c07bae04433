#!/usr/bin/env bash
# `make package`: build the Lambda artifacts with `sam build` (no container), as `sam deploy` will upload them.
#
# Each function's artifact is the runtime package alone (src/Makefile: src/flexrestore without local/ and
# simulator/); the dependencies are one layer, DependenciesLayer, installed from the lock
# requirements/lambda/requirements.txt (README: Deploy > Artifacts). The end of this script checks both and
# prints the size of every artifact.
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
LAYER=DependenciesLayer
LOCK=requirements/lambda/requirements.txt

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

# 4. Check what was built: each function carries the runtime package and nothing else (src/Makefile), the
#    layer carries exactly the pinned dependencies (requirements/lambda/requirements.txt). Then the sizes.
functions="$(awk '/^Resources:/ { in_resources = 1 }
    in_resources && /^  [A-Za-z0-9]+:[[:space:]]*$/ { id = $1; sub(":", "", id) }
    in_resources && /^    Type:[[:space:]]*AWS::Serverless::Function[[:space:]]*$/ { print id }' template.yaml)"
[ -n "$functions" ] || fail "found no AWS::Serverless::Function in template.yaml"
for function in $functions; do
    dir="$BUILD_DIR/$function"
    [ -d "$dir/flexrestore/handlers" ] || fail "$dir has no flexrestore package"
    for left_out in local simulator; do
        [ ! -e "$dir/flexrestore/$left_out" ] || fail "$dir carries flexrestore/$left_out, which production never runs"
    done
    [ "$(ls -A "$dir")" = "flexrestore" ] || fail "$dir carries more than the flexrestore package: $(ls -A "$dir" | tr '\n' ' ')"
done

layer="$BUILD_DIR/$LAYER/python"
for dependency in aws_lambda_powertools httpx pydantic; do
    [ -d "$layer/$dependency" ] || fail "$layer lacks $dependency ($LOCK)"
done
# The distributions in the layer, as canonical name==version, must be the lock's pins, no more and no less.
installed="$(for info in "$layer"/*.dist-info; do
    base="$(basename "$info" .dist-info)"
    echo "$(echo "${base%-*}" | tr 'A-Z_.' 'a-z--')==${base##*-}"
done | sort)"
pinned="$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$LOCK" | sort)"
if [ "$installed" != "$pinned" ]; then
    diff <(echo "$pinned") <(echo "$installed") >&2 || true
    fail "$layer does not hold exactly the pins of $LOCK (< pinned, > in the layer)"
fi

echo "make package: sizes, as sam deploy zips them (tests/infrastructure/artifact_sizes.py):"
"$python_bin" tests/infrastructure/artifact_sizes.py "$BUILD_DIR"
echo "make package: done. Deploy with: sam deploy --guided --template-file $BUILD_DIR/template.yaml"
