#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's groovy, npm's azurite), lint, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

if ! command -v groovy >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groovy >/dev/null
fi
if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    npm install --silent --no-audit --no-fund --prefix .tools azurite@3.37.0 >/dev/null
fi

ruff check .
ruff format --check .
python3 -m pytest "$@"
