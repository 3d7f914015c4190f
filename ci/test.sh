#!/usr/bin/env bash
# ci/test.sh - the whole test suite, from a fresh Debian 12 machine:
#   1. install what is missing (envs/local/install.sh, idempotent)
#   2. build with AddressSanitizer + UBSan (-Werror under CI)
#   3. unit tests (no network)
#   4. start the real local stack (Kafka, PostgreSQL, Redis, MinIO, platform)
#   5. integration tests and defect drills against it (a missing server is a
#      failure, never a skip)
#   6. stop the stack (also on failure)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${FPDRILL_TEST_BUILD:-$ROOT/build/asan}"
WERROR=OFF
[ "${CI:-}" = "true" ] && WERROR=ON

step() { printf '\n=== %s ===\n' "$*"; }

step "install"
envs/local/install.sh

step "build (ASan + UBSan, werror=$WERROR)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DFP_WERROR="$WERROR" \
  -DFP_SANITIZE='address;undefined' >/dev/null
cmake --build "$BUILD" -j2

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

step "unit tests"
ctest --test-dir "$BUILD" -L unit --output-on-failure

# The stack runs PostgreSQL as the postgres user, which must be able to reach
# the state dir inside this checkout; let the stack add o+x where needed.
export FPDRILL_FIX_PERMS=1

step "local stack"
trap 'envs/local/stack down || true' EXIT
envs/local/stack up

step "integration tests and defect drills"
ctest --test-dir "$BUILD" -L integration --output-on-failure
