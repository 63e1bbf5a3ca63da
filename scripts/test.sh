#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's groovy, npm's azurite and npm-groovy-lint, the
# azmlinfsrv, kserve and MLflow venvs, the simulated Azure's wheelhouse), lint, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

# The tools below install side by side (each its own venv or folder; mostly waiting on the registries), and
# mypy runs meanwhile. Each job's output goes to a log shown only if it fails.
logs=$(mktemp -d)
jobs_started=()
start() {  # start NAME COMMAND...: run COMMAND in the background, its output in $logs/NAME
    local name=$1
    shift
    ("$@") >"$logs/$name" 2>&1 &
    jobs_started+=("$name:$!")
}
finish() {  # wait for every started job; show the log of each that failed
    local failed=0 entry
    for entry in "${jobs_started[@]}"; do
        if ! wait "${entry#*:}"; then
            echo "scripts/test.sh: ${entry%%:*} failed:" >&2
            cat "$logs/${entry%%:*}" >&2
            failed=1
        fi
    done
    jobs_started=()
    return $failed
}
venv_with() {  # venv_with DIR PACKAGE...: a venv of its own for a tool whose pins clash with ours
    local dir=$1
    shift
    python3 -m venv "$dir" && "$dir/bin/pip" install -q --disable-pip-version-check "$@"
}
npm_tool() {  # npm_tool PREFIX PACKAGE
    npm install --silent --no-audit --no-fund --prefix "$1" "$2" >/dev/null
}
wheelhouse() {
    python3 -m pip freeze --exclude-editable | grep -v ' @ ' > .tools/wheelhouse-constraints.txt
    python3 -m pip download -q --disable-pip-version-check -d .tools/wheelhouse \
        -c .tools/wheelhouse-constraints.txt '.[azure-tracking]'
    touch .tools/wheelhouse/.complete
}
mkdir -p .tools

# Debian's groovy evaluates the Jenkinsfile; fincore (util-linux-extra) shows which of a file's pages the page
# cache holds, for the scoring log's test that it drops what it wrote.
debs=()
command -v groovy >/dev/null 2>&1 || debs+=(groovy)
command -v fincore >/dev/null 2>&1 || debs+=(util-linux-extra)
if [ ${#debs[@]} -gt 0 ]; then
    start debs bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${debs[*]} >/dev/null"
fi
# Azure ML's inference server pins its own OpenTelemetry and Flask: it gets a venv of its own.
if [ ! -x .tools/azmlinfsrv/bin/azmlinfsrv ]; then
    start azmlinfsrv venv_with .tools/azmlinfsrv azureml-inference-server-http==1.5.1 numpy scikit-learn skops orjson pysimdjson pybase64
fi
# KServe's SDK pins its own pandas, protobuf and kubernetes: its client runs from a venv of its own too.
if [ ! -x .tools/kserve/bin/python ]; then
    start kserve venv_with .tools/kserve kserve==0.21.0
fi
# The simulated Azure ML workspace's MLflow tracking server (tests/simazure/tracking.py): MLflow's server pins
# its own pandas and Flask, and the kit's dev extra holds an older mlflow-skinny (Azure ML's plugin caps it).
if [ ! -x .tools/mlflow/bin/mlflow ]; then
    start mlflow venv_with .tools/mlflow mlflow==3.17.2
fi
if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    start azurite npm_tool .tools azurite@3.37.0
fi
# The Groovy linter Jenkins users run (CodeNarc's Jenkinsfile rules); version 16 runs on Node 20 (18 needs Node 22).
if [ ! -x .tools/groovy-lint/node_modules/.bin/npm-groovy-lint ]; then
    start groovy-lint npm_tool .tools/groovy-lint npm-groovy-lint@16.2.0
fi
# The simulated Azure's package index (tests/simazure): jobs and containers build their venvs from it, never
# from the network. It holds the kit's dependency closure at the versions installed here.
if [ ! -f .tools/wheelhouse/.complete ] || [ pyproject.toml -nt .tools/wheelhouse/.complete ]; then
    start wheelhouse wheelhouse
fi
start mypy mypy diabetes_mlops
ruff check .
ruff format --check .
finish
cat "$logs/mypy"
# --noserver: without it a CodeNarc server stays running after the lint
.tools/groovy-lint/node_modules/.bin/npm-groovy-lint --config recommended-jenkinsfile --noserver --failon error \
    --loglevel error --output txt Jenkinsfile jenkins/vars jenkins/src
# Three workers on two cores: most tests wait on servers, venvs, jobs and subprocesses, not on the CPU. Tests on
# the simulated Azure are grouped (tests/conftest.py): the whole Jenkins path in one worker, the rest in
# another, each with its SimAzure. The slowest tests are listed at the end: CI has a 30-minute budget.
python3 -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadgroup --durations=25 "$@"
