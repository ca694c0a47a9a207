#!/usr/bin/env bash
# The test command (README: `bash scripts/test.sh`): set the machine up, then run every test.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k registry` or a test file's path.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

args=("$@")
# No arguments: the whole suite. With arguments, pytest still falls back to testpaths (tests)
# when none of them is a path, so `-k NAME` alone selects within the whole suite.
[ ${#args[@]} -gt 0 ] || args=(tests)
echo "test: CI=${CI:-} .venv/bin/python -m pytest -q -ra ${args[*]}" >&2
CI=${CI:-} exec .venv/bin/python -m pytest -q -ra "${args[@]}"
