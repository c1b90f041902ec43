#!/usr/bin/env bash
# Copies the browser bundles of the web client's npm dependencies into static/vendor/, which
# is committed and compiled into the gateway binary (crates/gateway/src/web.rs): nothing is
# downloaded at run time. Run it after changing a version in package.json:
#
#   bash crates/gateway/web/build.sh      (or: npm run build --prefix crates/gateway/web)
#
# It runs `npm ci` (or `npm install` when there is no package-lock.json yet) in this folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ -f package-lock.json ]]; then
	npm ci --no-audit --no-fund --loglevel=error
else
	npm install --no-audit --no-fund --loglevel=error
fi
mkdir -p static/vendor
cp node_modules/@stomp/stompjs/bundles/stomp.umd.min.js static/vendor/stomp.umd.min.js
cp node_modules/sockjs-client/dist/sockjs.min.js static/vendor/sockjs.min.js
{
	echo "Vendored browser bundles (copied by build.sh from the npm registry packages):"
	for p in @stomp/stompjs sockjs-client; do
		node -e "const p = require('./node_modules/$p/package.json'); console.log('  ' + p.name + ' ' + p.version + ' (' + p.license + ')')"
	done
} >static/vendor/VERSIONS.txt
cat static/vendor/VERSIONS.txt
