#!/usr/bin/env bash
# The plugin kit, as a plugin author meets it: `spindle new-plugin acme --kind all`
# in a temporary directory, `pip install` of the generated package into the
# active (CI) virtualenv, and the package's own tests. Its tests must pass as
# generated.
#
#   .ci/new_plugin.sh        # with the venv that has spindle[test] installed active
#
# The package is uninstalled again at the end, pass or fail: an installed
# spindle-acme would add its kinds and its hook module to every engine in
# spindle's own test suite, which runs next.
set -euo pipefail

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spindle-new-plugin.XXXXXX")
cleanup() {
    python -m pip uninstall --quiet --yes spindle-acme >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
echo "new-plugin: spindle new-plugin acme --kind all (in $WORK)"
spindle new-plugin acme --kind all

# The build needs setuptools and wheel: with them in the venv, no network and no index.
if python -c "import setuptools, wheel" 2>/dev/null; then
    isolation=--no-build-isolation
else
    isolation=
fi
echo "new-plugin: pip install --no-deps $isolation -e spindle-acme"
python -m pip install --quiet --no-deps $isolation -e ./spindle-acme

echo "new-plugin: spindle plugins --check (the acme kinds, imported)"
spindle plugins --check | { grep -E 'spindle-acme' || true; } | tee "$WORK/listed.txt"
if [ "$(grep -c ' ok ' "$WORK/listed.txt")" -ne 7 ]; then
    echo "error: expected the 7 acme kinds to load ('ok'); see the listing above" >&2
    exit 1
fi

echo "new-plugin: pytest (the generated package's own tests)"
cd spindle-acme
if ! python -m pytest -q -p no:cacheprovider; then
    echo "error: the tests of a freshly generated plugin package failed" >&2
    exit 1
fi
echo "new-plugin: ok"
