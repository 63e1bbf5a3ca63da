#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's groovy, npm's azurite and npm-groovy-lint, the
# azmlinfsrv and kserve venvs), lint, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

if ! command -v groovy >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groovy >/dev/null
fi
# Azure ML's inference server pins its own OpenTelemetry and Flask: it gets a venv of its own.
if [ ! -x .tools/azmlinfsrv/bin/azmlinfsrv ]; then
    python3 -m venv .tools/azmlinfsrv
    .tools/azmlinfsrv/bin/pip install -q --disable-pip-version-check \
        azureml-inference-server-http==1.5.1 numpy scikit-learn skops orjson
fi
# KServe's SDK pins its own pandas, protobuf and kubernetes: its client runs from a venv of its own too.
if [ ! -x .tools/kserve/bin/python ]; then
    python3 -m venv .tools/kserve
    .tools/kserve/bin/pip install -q --disable-pip-version-check kserve==0.21.0
fi
# The simulated Azure ML workspace's MLflow tracking server (tests/simazure/tracking.py): MLflow's server pins
# its own pandas and Flask, and the kit's dev extra holds an older mlflow-skinny (Azure ML's plugin caps it).
if [ ! -x .tools/mlflow/bin/mlflow ]; then
    python3 -m venv .tools/mlflow
    .tools/mlflow/bin/pip install -q --disable-pip-version-check mlflow==3.17.2
fi
if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    npm install --silent --no-audit --no-fund --prefix .tools azurite@3.37.0 >/dev/null
fi

# The Groovy linter Jenkins users run (CodeNarc's Jenkinsfile rules); version 16 runs on Node 20 (18 needs Node 22).
if [ ! -x .tools/groovy-lint/node_modules/.bin/npm-groovy-lint ]; then
    npm install --silent --no-audit --no-fund --prefix .tools/groovy-lint npm-groovy-lint@16.2.0 >/dev/null
fi
# The simulated Azure's package index (tests/simazure): jobs and containers build their venvs from it, never
# from the network. It holds the kit's dependency closure at the versions installed here.
if [ ! -f .tools/wheelhouse/.complete ] || [ pyproject.toml -nt .tools/wheelhouse/.complete ]; then
    python3 -m pip freeze --exclude-editable | grep -v ' @ ' > .tools/wheelhouse-constraints.txt
    python3 -m pip download -q --disable-pip-version-check -d .tools/wheelhouse \
        -c .tools/wheelhouse-constraints.txt '.[azure-tracking]'
    touch .tools/wheelhouse/.complete
fi

ruff check .
ruff format --check .
mypy diabetes_mlops
# --noserver: without it a CodeNarc server stays running after the lint
.tools/groovy-lint/node_modules/.bin/npm-groovy-lint --config recommended-jenkinsfile --noserver --failon error \
    --loglevel error --output txt Jenkinsfile jenkins/vars jenkins/src
# Two workers: most tests wait on servers, venvs and subprocesses, not on the CPU. Tests on the simulated Azure
# share one worker (one SimAzure and its cached venvs; tests/conftest.py groups them).
# The slowest tests are listed at the end: CI has a 30-minute budget.
python3 -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup --durations=25 "$@"
