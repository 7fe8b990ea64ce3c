#!/bin/sh
# test.sh - what `make test` runs.  Ends with one "total: N passed, N failed"
# line and a non-zero exit status when anything failed.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN=${ASAN:-build-asan}
FUZZ=${FUZZ:-build-fuzz}
PYTHON=${PYTHON:-/usr/bin/python3}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
step() { # name command...
	name=$1; shift
	echo "==> $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		echo "FAILED: $name"
		failed=$((failed + 1))
	fi
}

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
[ -f "$ASAN/build.ninja" ] || meson setup "$ASAN" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
[ -f "$FUZZ/build.ninja" ] || CC=clang meson setup "$FUZZ" -Dfuzz=true -Db_sanitize=address,undefined \
	-Db_lundef=false >/dev/null

step "build (gcc, -Werror)" ninja -C "$BUILD"
step "build (gcc, ASan+UBSan)" ninja -C "$ASAN"
step "build (clang, libFuzzer, ASan+UBSan)" ninja -C "$FUZZ"

# Unit tests: each cmocka binary is one step; meson prints per-binary results.
unit_out=$(mktemp)
if meson test -C "$ASAN" --suite unit --print-errorlogs >"$unit_out" 2>&1; then :; fi
cat "$unit_out"
u_ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$unit_out" | tail -1)
u_fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$unit_out" | tail -1)
u_skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$unit_out" | tail -1)
u_to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$unit_out" | tail -1)
rm -f "$unit_out"
passed=$((passed + ${u_ok:-0}))
failed=$((failed + ${u_fail:-0} + ${u_skip:-0} + ${u_to:-0}))
[ -n "${u_ok:-}" ] || failed=$((failed + 1))

# Fuzz: every target for a short run over a copy of its seed corpus.
run_fuzzer() { # binary corpus-dir
	work=$(mktemp -d)
	[ -d "$2" ] && cp -r "$2"/. "$work"/
	if "$1" -max_total_time="$FUZZ_SECONDS" -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
		grep -E 'stat::number_of_executed_units' "$work.log" | sed 's/^/    /'
		rm -rf "$work" "$work.log"
		return 0
	fi
	tail -40 "$work.log"
	echo "fuzzer input that failed is kept in $work"
	return 1
}
for f in "$FUZZ"/src/*/fuzz_* "$FUZZ"/src/*/*/fuzz_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	name=$(basename "$f" | sed 's/^fuzz_//')
	corpus=tests/fuzz/$name
	[ -d "$corpus" ] || corpus=tests/fuzz/$(echo "$name" | sed 's/_parser$//')
	step "fuzz $name (${FUZZ_SECONDS}s)" run_fuzzer "$f" "$corpus"
done

# Protocol tests against the sanitizer binaries.
py_out=$(mktemp)
YUBIN_BUILD="$PWD/$ASAN" "$PYTHON" -m pytest -q -p no:cacheprovider tests/proto 2>&1 | tee "$py_out"
py_line=$(grep -E '[0-9]+ (passed|failed)' "$py_out" | tail -1)
p_ok=$(echo "$py_line" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p')
p_fail=$(echo "$py_line" | sed -n 's/.*\b\([0-9][0-9]*\) failed.*/\1/p')
p_err=$(echo "$py_line" | sed -n 's/.*\b\([0-9][0-9]*\) error.*/\1/p')
rm -f "$py_out"
passed=$((passed + ${p_ok:-0}))
failed=$((failed + ${p_fail:-0} + ${p_err:-0}))
[ -n "${p_ok:-}${p_fail:-}" ] || failed=$((failed + 1))

echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
