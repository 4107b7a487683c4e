#!/usr/bin/env bash
# The example plugin package, examples/spindle-http, as a stranger would use it:
# built into a wheel, installed beside spindle in a FRESH virtualenv, its own
# tests run there, then a workflow using every one of its kinds run through
# the `spindle` command against a local server (examples/spindle-http/serve.py).
#
#   .ci/example_plugin.sh              # from anywhere inside the repository
#   PYTHON=python3.12 .ci/example_plugin.sh
#
# Work files go to a temporary directory, removed at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3.11}
EXAMPLE="$ROOT/examples/spindle-http"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spindle-example-plugin.XXXXXX")
DIST="$WORK/dist"
VENV="$WORK/venv"
SERVER_PID=""

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n==> example plugin: %s\n' "$*"; }

# Nothing from the machine leaks in: no SPINDLE_* settings, a private plugin cache.
while IFS= read -r name; do unset "$name"; done < <(env | sed -n 's/^\(SPINDLE_[A-Za-z0-9_]*\)=.*/\1/p')
export SPINDLE_CACHE_DIR="$WORK/cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

step "build the wheel: pip wheel --no-deps -w $DIST examples/spindle-http"
# From a copy: setuptools writes build/ and *.egg-info/ next to the sources.
cp -r "$EXAMPLE" "$WORK/spindle-http"
"$PYTHON" -m pip wheel --quiet --no-deps -w "$DIST" "$WORK/spindle-http"
wheel=$(ls "$DIST"/spindle_http-*.whl)
echo "built $(basename "$wheel")"

step "fresh virtualenv: $PYTHON -m venv $VENV"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" --version

step "install spindle (pip install $ROOT), the example wheel and pytest"
"$PY" -m pip install --quiet "$ROOT" "$wheel" pytest
"$PY" -m pip list --format=freeze | grep -Ei '^(spindle|spindle-http|spindle_http|pytest)=='

step "the installed package is the wheel's, and its kinds are discovered"
cd "$WORK"
"$PY" - <<'EOF'
import json
import subprocess
import sys

import spindle_http

print(f"spindle_http from {spindle_http.__file__}")
if "site-packages" not in spindle_http.__file__:
    sys.exit("error: spindle_http was not imported from the virtualenv's site-packages")
# --check imports every kind; it exits 1 here because spindle's optional kinds
# (dask, postgres) lack their extras in this venv: only ours must load.
listing = subprocess.run(
    [sys.executable, "-m", "spindle", "plugins", "--check", "--json"],
    capture_output=True, text=True, check=False,
)
found = {(p["group"], p["kind"]): p for p in json.loads(listing.stdout)["plugins"]}
for key in [("runtime", "http"), ("observer", "webhook"), ("effect", "http_poll"),
            ("middleware", "rate_limit")]:
    plugin = found.get(key)
    if plugin is None or plugin["distribution"] != "spindle-http" or plugin["error"]:
        sys.exit(f"error: {key[0]} '{key[1]}' from spindle-http is not installed and ok: {plugin}")
    print(f"{key[0]:8} {key[1]:10} {plugin['distribution']} {plugin['version']} loads")
EOF

step "the package's own tests, from the fresh virtualenv"
cp -r "$EXAMPLE/tests" "$EXAMPLE/pyproject.toml" "$WORK/"
"$PY" -m pytest -q -p no:cacheprovider --rootdir "$WORK" -c "$WORK/pyproject.toml" "$WORK/tests"

step "start the local shop: python serve.py --port 0"
mkdir "$WORK/run"
cd "$WORK/run"
"$PY" "$EXAMPLE/serve.py" --port 0 --port-file port >serve.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s port ] && break; sleep 0.1; done
PORT=$(cat port)
SHOP="http://127.0.0.1:$PORT"
echo "shop at $SHOP"
cp "$EXAMPLE/workflow.yaml" .
sed "s#http://127.0.0.1:8765#$SHOP#" "$EXAMPLE/spindle.toml" > spindle.toml

step "spindle -vv run workflow.yaml --json (http runtime, http_poll effect, webhook observer, rate_limit middleware)"
set +e
"$VENV/bin/spindle" -vv run workflow.yaml --json --input token=demo-token --input "shop=$SHOP" \
    > run.json 2> run.log
status=$?
set -e
cat run.json
grep -E '^spindle\.http[.a-z_]*: (INFO|WARNING)' run.log || true
if [ "$status" -ne 0 ]; then
    echo "error: spindle run exited $status (expected 0)" >&2
    cat run.log serve.log >&2
    exit 1
fi

step "every kind was used"
"$PY" - "$SHOP" <<'EOF'
import json
import sys
import urllib.request

run = json.load(open("run.json"))
log = open("run.log").read()
stats = json.load(urllib.request.urlopen(sys.argv[1] + "/_stats"))
print(json.dumps(stats, indent=2))
problems = []
if run["status"] != "completed":
    problems.append(f"run status {run['status']}")
out = run["output"] or {}
if out.get("item", {}).get("price") != 3.5:
    problems.append(f"http runtime (GET, select): item {out.get('item')}")
if out.get("order") != "ord-1" or stats["requests"].get("POST /orders") != 2:
    problems.append("http runtime (POST, secret header, retried 503): no order ord-1 in 2 tries")
if (out.get("shipped") or {}).get("body", {}).get("state") != "shipped":
    problems.append(f"http_poll effect: shipped = {out.get('shipped')}")
if stats["requests"].get("GET /orders/ID/status", 0) < 3:
    problems.append("http_poll effect: fewer than 3 polls")
events = stats["events"]
if events[:1] != ["run_started"] or events[-1:] != ["run_completed"]:
    problems.append(f"webhook observer: events received {events}")
limited = [line for line in log.splitlines() if "spindle.http.rate_limit: INFO: 127.0.0.1: " in line]
if len(limited) < 5:  # catalog, order and at least 3 polls
    problems.append(f"rate_limit middleware: {len(limited)} limited calls logged")
if "demo-token" in log:
    problems.append("the secret token is in the -vv log")
if problems:
    sys.exit("error: " + "; ".join(problems))
print("http runtime: GET catalog, POST order (503 retried) -> ord-1")
print(f"http_poll effect: shipped after {out['shipped']['polls']} polls")
print(f"webhook observer: {len(events)} events posted: {', '.join(events)}")
print(f"rate_limit middleware: {len(limited)} calls to 127.0.0.1 spaced out")
print("secret token: not in the -vv log")
EOF
if grep -q demo-token .spindle/spindle.db*; then
    echo "error: the secret token is in the store file" >&2
    exit 1
fi
echo "secret token: not in the store"
echo "example plugin: ok"
