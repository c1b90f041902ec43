# shellcheck shell=bash
# Argument helpers for the benchmark scripts (sourced).

# has_arg NAME ARG...: whether ARG... contains option NAME (as `NAME V` or `NAME=V`).
has_arg() {
	local name=$1 a
	shift
	for a in "$@"; do
		[[ $a == "$name" || $a == "$name="* ]] && return 0
	done
	return 1
}
