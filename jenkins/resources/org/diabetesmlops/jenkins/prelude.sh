# Prelude of every command line the diabetes-mlops library runs (mlopsSh): the build's virtual environment,
# the home (registry, deployments: the agent's DIABETES_MLOPS_HOME, else ~/.diabetes-mlops/<job>, outside the
# workspace so a fresh workspace of the job on this agent keeps its champion), the build's run directory in the
# workspace, and the subscription of the bound Azure service principal when there is one.
venv="${MLOPS_VENV:-.venv}"
if [ ! -x "$venv/bin/diabetes-mlops" ]; then
    echo "no virtual environment at $venv: run mlopsBuild(task: 'setup') (the Setup stage) first" >&2
    exit 1
fi
. "$venv/bin/activate"
export DIABETES_MLOPS_HOME="${DIABETES_MLOPS_HOME:-$HOME/.diabetes-mlops/${JOB_NAME:-diabetes-mlops}}"
export DIABETES_MLOPS_RUN_DIR="${DIABETES_MLOPS_RUN_DIR:-${WORKSPACE:-$PWD}/.mlops/runs/build-${BUILD_NUMBER:-0}}"
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    export DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID="${DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID:-$AZURE_SUBSCRIPTION_ID}"
fi
