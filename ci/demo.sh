#!/usr/bin/env bash
# ci/demo.sh - the demo: install what is missing, start the local stack and
# the reference platform, run DR-02 (replay integrity) against it, and show
# the verdict and where the report bundle is. The stack is left running
# (stop it with envs/local/stack down).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${FPDRILL_BUILD:-$ROOT/build/release}"

envs/local/install.sh
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFP_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target fpdrill
FPDRILL_FIX_PERMS=1 envs/local/stack up

printf '\n=== running DR-02 replay integrity on the local stack ===\n'
set +e
"$BUILD/harness/cli/fpdrill" run scenarios/dr-02-replay-integrity.yaml \
  --env envs/local.yaml "$@"
code=$?
set -e
bundle="$(ls -dt fpdrill-out/DR-02/*/ 2>/dev/null | head -n 1)"
if [ -n "$bundle" ] && [ -f "$bundle/report.md" ]; then
  printf '\n=== %sreport.md (first lines) ===\n' "$bundle"
  head -n 30 "$bundle/report.md"
fi
exit "$code"
