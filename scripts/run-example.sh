#!/usr/bin/env bash
# The README's first command: set everything up, then run envbuild's main job end to end on the
# bundled example (examples/churn). Today the job is: lock (Python packages for linux/amd64 and
# linux/arm64, base image by digest), show the lock, and prove a second lock changes no byte.
# Model, data, image and nix steps join this script as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ENVBUILD=$PWD/.venv/bin/envbuild
EXAMPLE=examples/churn

step() { printf '\n==> %s\n' "$*" >&2; }

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
