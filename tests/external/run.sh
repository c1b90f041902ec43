#!/usr/bin/env bash
# Runs every tests/external/*.sh (except this file), continuing past failures.
# Exit status of each check: 0 = passed, 77 = skipped (prerequisite absent), else failed.
# Exits non-zero if any check failed; with CI set, a skipped check counts as failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$(basename "${BASH_SOURCE[0]}")"

passed=0
failed=0
skipped=0
failures=()

for script in "$here"/*.sh; do
	name="$(basename "$script")"
	[[ $name == "$self" ]] && continue
	echo "==> external check: $name"
	rc=0
	bash "$script" </dev/null || rc=$?
	case $rc in
	0) passed=$((passed + 1)) ;;
	77)
		if [[ -n ${CI:-} ]]; then
			# In CI every prerequisite is installed by .ci/run: a skip would hide a check.
			failed=$((failed + 1))
			failures+=("$name (skipped in CI)")
			echo "==> $name: SKIPPED, which counts as a failure in CI"
		else
			skipped=$((skipped + 1))
			echo "==> $name: SKIPPED"
		fi
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name (exit $rc)")
		echo "==> $name: FAILED (exit $rc)"
		;;
	esac
done

if ((passed + failed == 0)); then
	# Nothing actually ran: say so without a count line that could read as "ran no test".
	echo "external checks: none ran (${skipped} skipped)"
else
	echo "external: ${passed} passed, ${failed} failed, ${skipped} skipped"
fi
if ((failed > 0)); then
	printf 'failed external check: %s\n' "${failures[@]}" >&2
	exit 1
fi
