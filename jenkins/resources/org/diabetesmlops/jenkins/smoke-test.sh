# Smoke test of the deployment MLOPS_ENV (qa or production) that the Deploy stage of this build recorded in
# the run directory (deployment-<env>.json, the output of `diabetes-mlops --json deploy`): health, readiness,
# the reference payload, the model version. Local or Azure alike: the record holds the URL.
record="$DIABETES_MLOPS_RUN_DIR/deployment-$MLOPS_ENV.json"
url="$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$record")"
diabetes-mlops smoke-test "$url"
