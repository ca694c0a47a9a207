#!/usr/bin/env bash
# The README's first command: set everything up, then run envbuild's main job end to end on the
# bundled example (examples/churn). Today the job is: lock (Python packages for linux/amd64 and
# linux/arm64, base image by digest, the MLflow model by version and digest), show the lock, prove
# a second lock changes no byte, and serve the model as a BentoML service.
# Data, image and nix steps join this script as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ENVBUILD=$PWD/.venv/bin/envbuild
EXAMPLE=examples/churn

step() { printf '\n==> %s\n' "$*" >&2; }

step "train and register the example's model in MLflow (once: $EXAMPLE/mlflow.db)"
# Each machine trains its own model (re-logging is not byte-stable), so the first lock here
# re-pins [model] to this machine's version and digest.
if [ -f "$EXAMPLE/mlflow.db" ]; then
    echo "already trained ($EXAMPLE/mlflow.db)" >&2
else
    .venv/bin/python "$EXAMPLE/train.py"
fi

step "lock the example ($EXAMPLE)"
"$ENVBUILD" -C "$EXAMPLE" lock
before=$(cd "$EXAMPLE" && sha256sum envbuild.lock pylock.toml requirements.txt)

step "lock again: nothing to resolve, no byte changes"
"$ENVBUILD" -C "$EXAMPLE" lock
after=$(cd "$EXAMPLE" && sha256sum envbuild.lock pylock.toml requirements.txt)
if [ "$before" != "$after" ]; then
    echo "error: the second lock changed files" >&2
    exit 1
fi

step "check the lock is fresh (the CI gate)"
"$ENVBUILD" -C "$EXAMPLE" lock --check

step "package the locked model as a BentoML service (digest-checked), serve it, ask it"
"$ENVBUILD" -C "$EXAMPLE" model package
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ENVBUILD" -C "$EXAMPLE" serve --port "$port" >"${TMPDIR:-/tmp}/envbuild-serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break
    sleep 0.5
done
curl -fsS -X POST "http://127.0.0.1:$port/predict" -H 'content-type: application/json' \
    -d '{"rows": [{"tenure": 3, "monthly_charges": 95.5, "contract": "month"},
                  {"tenure": 60, "monthly_charges": 20.0, "contract": "two_year"}]}'
echo
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
trap - EXIT

step "what the lock pins"
"$ENVBUILD" -C "$EXAMPLE" show | head -20

summary=$("$ENVBUILD" -C "$EXAMPLE" show --json)
step "summary"
SUMMARY="$summary" .venv/bin/python - <<'PY'
import json, os
s = json.loads(os.environ["SUMMARY"])
print(f"bundle id   {s['bundle']}")
print(f"packages    {len(s['packages'])} for {', '.join(s['platforms'])} (Python {s['python']})")
print(f"base image  {s['base_image'] or '(none)'}")
print("files       examples/churn/envbuild.lock, pylock.toml, requirements.txt")
PY
