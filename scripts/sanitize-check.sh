#!/usr/bin/env bash
# Builds the library, the CLI and the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DDDTRAIN_SANITIZE=ON) in build-sanitize/ and runs the unit tests (the CLI tests among them run
# the sanitized `ddtrain`, also under mpirun). Any ASan report or UBSan runtime error fails it.
# Usage: scripts/sanitize-check.sh [gtest filter]   (about 40 min of building on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-*}"
build=build-sanitize
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDDTRAIN_SANITIZE=ON "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target ddtrain_unit_tests ddtrain_cli
log="$build/sanitize-tests.log"
# LibTorch and Open MPI keep allocations until exit by design: leak reports would be theirs.
# halt_on_error makes UBSan findings fatal like ASan's.
status=0
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1 \
  "$build/tests/ddtrain_unit_tests" --gtest_filter="$filter" 2>&1 | tee "$log" || status=$?
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
  echo "sanitize-check: sanitizer reports in $log" >&2
  exit 1
fi
exit "$status"
