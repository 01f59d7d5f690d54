#!/usr/bin/env bash
# Nightly-style run: the `dev` hypothesis profile (more examples, not derandomized) with a
# fresh seed, so each run tries inputs CI (the derandomized `ci` profile) never draws.
# On failure it prints the seed; rerun with that seed to get the same draws:
#   HYPOTHESIS_PROFILE=dev python -m pytest -q --hypothesis-seed=SEED [tests/...]
# Extra arguments go to pytest (e.g. a directory: tools/nightly-tests.sh tests/kernels);
# HYPOTHESIS_SEED=N uses seed N instead of a fresh one (to repeat a nightly failure).
set -uo pipefail
cd "$(dirname "$0")/.."
seed="${HYPOTHESIS_SEED:-$(python -c 'import secrets; print(secrets.randbelow(2**32))')}"
echo "nightly tests: HYPOTHESIS_PROFILE=dev --hypothesis-seed=$seed"
HYPOTHESIS_PROFILE=dev python -m pytest -q --hypothesis-seed="$seed" "$@"
status=$?
if [ "$status" -ne 0 ]; then
    echo "nightly tests FAILED (exit $status) with --hypothesis-seed=$seed; reproduce with:" >&2
    echo "  HYPOTHESIS_PROFILE=dev python -m pytest -q --hypothesis-seed=$seed $*" >&2
fi
exit "$status"
