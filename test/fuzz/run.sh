#!/usr/bin/env bash
# Runs every fuzz target of the module (each `func FuzzX(f *testing.F)` in a _test.go file outside
# test/) for FUZZTIME (default 20s), starting from the corpus checked in under the package's
# testdata/fuzz/FuzzX (minimizing a new input for at most 2 s, so that large inputs do not eat the
# run). Prints the executions per target; fails on the first crasher, which Go
# writes to testdata/fuzz/FuzzX/ for you to commit with the fix.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime=${FUZZTIME:-20s}
summary=()
while IFS=: read -r file _ decl; do
  dir=$(dirname "$file")
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$decl")
  echo ">>> fuzzing $name in $dir for $fuzztime"
  log=$(mktemp)
  corpus="$dir/testdata/fuzz/$name"
  before=$(ls "$corpus" 2>/dev/null | sort || true)
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$dir" 2>&1 | tee "$log"; then
    after=$(ls "$corpus" 2>/dev/null | sort || true)
    # Go 1.26's fuzz coordinator can fail a target at the -fuzztime deadline with a bare "context
    # deadline exceeded" and no input (golang/go#75804, fixed in Go 1.27): its own race, not a
    # finding. Anything else, or any input written, fails the run.
    if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo ">>> $name: the toolchain's fuzztime race (golang/go#75804) ended the run; no input failed"
    else
      rm -f "$log"
      echo "fuzz target $name in $dir failed; the crasher is under $corpus"
      exit 1
    fi
  fi
  execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  rm -f "$log"
  summary+=("$(printf '%-40s %-45s %s executions' "$name" "$dir" "${execs:-?}")")
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^\./test/' | sort)
echo ">>> fuzz summary ($fuzztime each)"
printf '%s\n' "${summary[@]}"
