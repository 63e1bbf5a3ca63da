#!/usr/bin/env bash
# Setup stage of the diabetes-mlops library (mlopsBuild task 'setup'): make the build's virtual environment,
# once per build, and install the project into it. Every later step activates it (prelude.sh).
#   MLOPS_PYTHON   interpreter that makes the venv (python3; must be 3.11 or newer)
#   MLOPS_VENV     where (.venv, relative to the workspace)
#   MLOPS_EXTRAS   extras to install (dev: tests, linters and the azure SDKs)
#   VENV_ARGS      extra arguments of `python -m venv` (for example --system-site-packages --without-pip)
#   MLOPS_REPORTS  the report folder, emptied here: workspaces are kept, and a report left by an earlier build
#                  must never be published as this build's when a later stage fails
set -euo pipefail

python="${MLOPS_PYTHON:-python3}"
venv="${MLOPS_VENV:-.venv}"
extras="${MLOPS_EXTRAS:-dev}"
reports="${MLOPS_REPORTS:-reports}"

rm -rf "$reports"
mkdir -p "$reports"

"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "diabetes-mlops needs Python 3.11 or newer, found " + sys.version.split()[0])'

rm -rf "$venv"
# shellcheck disable=SC2086  # VENV_ARGS holds several words on purpose
"$python" -m venv ${VENV_ARGS:-} "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet -e ".[${extras}]"
"$venv/bin/diabetes-mlops" --help >/dev/null
echo "virtual environment ready: $venv ($("$venv/bin/python" --version))"
