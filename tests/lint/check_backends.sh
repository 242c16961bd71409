#!/usr/bin/env bash
# The CPU backend build (docs/architecture.md, "CPU backends"), checked on any CPU:
#  1. no runtime-loaded CPU variant holds ggml's AMX kernels unless the build opted in
#     (KVSTREAM_AMX=1): a machine without AMX cannot run them, so the check reads the files;
#  2. `kvstream --version` names kvstream, the pinned commit, the build flags and the variant;
#  3. a variant that is not built is refused with a clear error, and nothing runs.
# Usage: check_backends.sh KVSTREAM_BINARY BACKEND_DIR BUILD_RECORD MODEL
# Exit 77 (ctest reports the test as skipped, by name) on a native build, where checks 1 and 3
# cannot run: check 2 has still run and passed then.
set -euo pipefail
kvstream=$1 dir=$2 record=$3 model=$4
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$record" ] || fail "no build record $record (scripts/build_llama.sh writes it)"
amx=$(sed -n 's/^amx=//p' "$record")
native=$(sed -n 's/^native=//p' "$record")
if [ "$native" = ON ]; then
  echo "native build (measurement only): one built-in CPU backend; checks 1 and 3 cannot run"
else
  shopt -s nullglob
  variants=("$dir"/libggml-cpu-*.so)
  [ "${#variants[@]}" -ge 2 ] || fail "expected the CPU variants in $dir, found ${#variants[@]}"
  for so in "${variants[@]}"; do
    n=$(nm -D --defined-only "$so" | grep -c 'ggml_backend_amx_' || true)
    if [ "$amx" != ON ] && [ "$n" -gt 0 ]; then
      fail "$so holds ggml's AMX kernels ($n symbols) but the build did not opt in (KVSTREAM_AMX=1)"
    fi
  done
  echo "${#variants[@]} CPU variants, AMX kernels: $([ "$amx" = ON ] && echo opted in || echo none)"
fi

version=$("$kvstream" --version)
echo "$version"
grep -q '^kvstream [0-9]' <<<"$version" || fail "--version does not name kvstream's version"
grep -q '^commit=80fb11ac' <<<"$version" || fail "--version does not name the pinned commit"
grep -q '^flags=.*GGML_' <<<"$version" || fail "--version does not print the build flags"
grep -q '^this machine: CPU backend [a-z0-9_.-]* (' <<<"$version" || fail "--version names no variant"

if [ "$native" != ON ]; then
  set +e
  out=$("$kvstream" --cpu-variant no-such-variant demo --model "$model" --sessions 1 \
        --checkpoints 64 2>&1)
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "an unknown variant was accepted"
  grep -q "no-such-variant" <<<"$out" || fail "the error does not name the variant: $out"
  grep -q "built: " <<<"$out" || fail "the error does not list the built variants: $out"
  echo "unknown variant refused: $out"
fi
if [ "$native" = ON ]; then
  echo "SKIPPED: checks 1 (AMX kernels) and 3 (unknown variants) on a native build of $dir" >&2
  exit 77
fi
echo "backends check passed"
