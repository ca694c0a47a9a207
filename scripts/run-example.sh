#!/usr/bin/env bash
# The README's first command: set everything up, then run envbuild's main job end to end on the
# bundled example (examples/churn): train and register the model, lock (Python packages for
# linux/amd64 and linux/arm64, base image by digest, the MLflow model by version and digest),
# prove a second lock changes no byte, package and serve the model as a BentoML service, pin the
# data, generate and verify, build the image, run it and ask it, rebuild and show the digest
# repeats, then print a summary.
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

step "pin the example's data file by sha256 (envbuild.lock [data])"
"$ENVBUILD" -C "$EXAMPLE" data add data/churn.csv

step "generate the image bundle from the lock (Dockerfile, SBOM, hash-checked wheels, model, code)"
"$ENVBUILD" -C "$EXAMPLE" generate

step "verify: lock fresh, generated files, data and model match the lock (the CI gate)"
"$ENVBUILD" -C "$EXAMPLE" verify

step "build the image with buildah (reproducible) and load it into the Docker engine"
build_json=$("$ENVBUILD" -C "$EXAMPLE" build --load-docker --json)
image_id=$(BUILD="$build_json" .venv/bin/python -c 'import json, os; print(json.loads(os.environ["BUILD"])["image_id"])')
image_tag=$(BUILD="$build_json" .venv/bin/python -c 'import json, os; print(json.loads(os.environ["BUILD"])["tag"])')
echo "built $image_tag, image id $image_id" >&2

step "start the image under Docker and ask the locked model in it for two predictions"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Docker names the loaded image without buildah's localhost/ prefix; host networking on a free
# port (the service reads PORT) needs no NAT rules from the engine.
container=$(docker run -d --rm --network host -e "PORT=$port" "${image_tag#localhost/}")
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.5
done
echo "the container runs as: $(docker exec "$container" id -un)" >&2
curl -fsS "http://127.0.0.1:$port/predict?tenure=3&monthly_charges=95.5&contract=month"
curl -fsS -X POST "http://127.0.0.1:$port/predict" -H 'content-type: application/json' \
    -d '{"tenure": 60, "monthly_charges": 20.0, "contract": "two_year"}'
docker rm -f "$container" >/dev/null
trap - EXIT

step "rebuild from scratch (no layer cache): the image digest repeats"
"$ENVBUILD" -C "$EXAMPLE" verify --rebuild

step "what the lock pins"
"$ENVBUILD" -C "$EXAMPLE" show | head -20

summary=$("$ENVBUILD" -C "$EXAMPLE" show --json)
step "summary"
SUMMARY="$summary" IMAGE_TAG="$image_tag" IMAGE_ID="$image_id" .venv/bin/python - <<'PY'
import json, os
s = json.loads(os.environ["SUMMARY"])
print(f"bundle id   {s['bundle']}")
print(f"packages    {len(s['packages'])} for {', '.join(s['platforms'])} (Python {s['python']})")
print(f"base image  {s['base_image'] or '(none)'}")
model = s.get("model") or {}
print(f"model       {model.get('name')} version {model.get('version')} ({model.get('digest')})")
for path, ref in sorted(((s.get("data") or {}).get("refs") or {}).items()):
    print(f"data        {path} {ref.get('digest')}")
print(f"image       {os.environ['IMAGE_TAG']} id {os.environ['IMAGE_ID']} (repeats on rebuild)")
print("files       examples/churn/envbuild.lock, pylock.toml, requirements.txt, envbuild.build.json,")
print("            examples/churn/.envbuild/bundle/ (Dockerfile, sbom.cdx.json, wheels, model, code)")
PY
