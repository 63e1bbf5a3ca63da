# Prelude of every command line the diabetes-mlops library runs (mlopsSh): the build's virtual environment,
# and the subscription of the bound Azure service principal when there is one.
venv="${MLOPS_VENV:-.venv}"
if [ ! -x "$venv/bin/diabetes-mlops" ]; then
    echo "no virtual environment at $venv: run mlopsBuild(task: 'setup') (the Setup stage) first" >&2
    exit 1
fi
. "$venv/bin/activate"
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
    export DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID="${DIABETES_MLOPS_AZURE_SUBSCRIPTION_ID:-$AZURE_SUBSCRIPTION_ID}"
fi
