#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The checks CI runs after the test suite (.ci/run), each in its own build
# directory so they never disturb _build:
#
#   build-aux/ci-checks.sh bench      the benchmark in quick mode (n / 100)
#   build-aux/ci-checks.sh asan       AddressSanitizer + UndefinedBehaviorSanitizer
#                                     (+ LeakSanitizer) over the whole C suite
#   build-aux/ci-checks.sh valgrind   memcheck over the C tests (zero errors,
#                                     nothing definitely or indirectly lost)
#   build-aux/ci-checks.sh tsan       ThreadSanitizer over the C tests (clang)
#   build-aux/ci-checks.sh fuzz [S]   the libFuzzer harness for S seconds (60)
#   build-aux/ci-checks.sh all        all of the above
#
# Python and GJS do not run under the sanitizers; they run in the normal
# build. FUZZ_SECONDS overrides the fuzzing time of "all".

set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
root=$PWD

BUILD_DIR=${BUILD_DIR:-_build}

# Options that keep sanitizer builds to the library and its C tests.
c_only=(-Dintrospection=disabled -Ddocumentation=disabled -Dvapi=disabled -Dexamples=true)

setup () {
  local dir=$1
  shift
  if [ ! -f "$dir/meson-private/coredata.dat" ]; then
    meson setup "$dir" "$@"
  fi
  meson compile -C "$dir"
}

run_bench () {
  echo "=== benchmark (quick mode; no timing is asserted)"
  setup "$BUILD_DIR" -Dwerror=true
  "$BUILD_DIR/tests/performance/ctok-bench" --quick
}

run_asan () {
  echo "=== AddressSanitizer + UndefinedBehaviorSanitizer"
  setup _build-asan "${c_only[@]}" -Db_sanitize=address,undefined -Db_lundef=false
  # The GTK example leaks in Mesa and fontconfig, which LeakSanitizer reports.
  G_SLICE=always-malloc G_DEBUG=gc-friendly \
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C _build-asan --print-errorlogs --no-suite gtk
}

run_valgrind () {
  echo "=== valgrind memcheck"
  setup "$BUILD_DIR" -Dwerror=true
  meson test -C "$BUILD_DIR" --setup valgrind --suite core --print-errorlogs
}

run_tsan () {
  echo "=== ThreadSanitizer (suppressions, each with its reason: tests/tsan.supp)"
  CC=clang setup _build-tsan "${c_only[@]}" -Db_sanitize=thread -Db_lundef=false
  G_SLICE=always-malloc \
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp" \
    meson test -C _build-tsan --suite core --print-errorlogs
}

run_fuzz () {
  local seconds=${1:-60}
  echo "=== libFuzzer, $seconds s"
  CC=clang setup _build-fuzz "${c_only[@]}" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
  rm -rf _build-fuzz/corpus && mkdir -p _build-fuzz/corpus
  G_SLICE=always-malloc ASAN_OPTIONS=detect_leaks=1 \
    _build-fuzz/tests/fuzz/fuzz-ops -max_total_time="$seconds" -rss_limit_mb=4096 \
      -print_final_stats=1 _build-fuzz/corpus tests/fuzz/corpus
}

case "${1:-all}" in
  bench) run_bench ;;
  asan) run_asan ;;
  valgrind) run_valgrind ;;
  tsan) run_tsan ;;
  fuzz) run_fuzz "${2:-60}" ;;
  all)
    run_bench
    run_asan
    run_valgrind
    run_tsan
    run_fuzz "${FUZZ_SECONDS:-60}"
    ;;
  *) echo "usage: $0 [bench|asan|valgrind|tsan|fuzz [SECONDS]|all]" >&2; exit 2 ;;
esac
