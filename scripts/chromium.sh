#!/usr/bin/env bash
# Prints the path of a Chromium (or Chrome) executable, installing Debian's `chromium`
# package with apt-get when none is present (as root, or through sudo without a password).
#
# Used by the browser tests (tests/browser, tests/external/browser.sh): Playwright drives this
# system browser and never downloads one of its own.
#
# Exit status: 0 with the path on stdout; 1 when no browser is present and it cannot be
# installed (not root and no sudo, or apt-get failed). Environment: CHROMIUM_PATH (use this
# executable when it exists).
set -euo pipefail

find_chromium() {
	local c
	if [[ -n ${CHROMIUM_PATH:-} && -x $CHROMIUM_PATH ]]; then
		echo "$CHROMIUM_PATH"
		return 0
	fi
	for c in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

if find_chromium; then
	exit 0
fi

apt=(apt-get)
if [[ $(id -u) != 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		apt=(sudo -n apt-get)
	else
		echo "chromium.sh: no Chromium found and not root (no passwordless sudo) to install it" >&2
		exit 1
	fi
fi
echo "chromium.sh: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" update -q </dev/null >&2 || {
	echo "chromium.sh: apt-get update failed" >&2
	exit 1
}
"${apt[@]}" install -y -q --no-install-recommends chromium fonts-dejavu-core fonts-noto-color-emoji </dev/null >&2 || {
	echo "chromium.sh: apt-get install chromium failed" >&2
	exit 1
}
find_chromium || {
	echo "chromium.sh: chromium installed but not found on PATH" >&2
	exit 1
}
