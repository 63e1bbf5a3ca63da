import org.diabetesmlops.jenkins.StepConfig

/**
 * The Release stages: package the champion into a scoring bundle (a Docker build context in the run
 * directory), deploy it to QA, smoke-test QA, wait for approval, deploy it to production, smoke-test
 * production. 'undeployQa' is the tidy-up for `post` (local target only). With target 'azure' every command
 * runs inside withCredentials(azureServicePrincipal(...)). Settings: mlopsRelease.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge('mlopsRelease', [
        task: 'all',
        target: 'local',
        model: 'champion',
        bundle: null,
        approvalTimeoutHours: 8,
        approvalMessage: 'Deploy the model that passed QA to production?',
        submitter: null,
        azureCredentialsId: 'azure-service-principal',
        venv: '.venv',
    ], config)
    Map common = [target: cfg.target, credentials: true, azureCredentialsId: cfg.azureCredentialsId, venv: cfg.venv,
                  env: [MLOPS_MODEL: cfg.model, MLOPS_BUNDLE: cfg.bundle]]
    List order = ['package', 'deployQa', 'smokeTestQa', 'approve', 'deployProduction', 'smokeTestProduction']
    List tasks = cfg.task == 'undeployQa' ? ['undeployQa'] : StepConfig.tasks('mlopsRelease', cfg.task, order)
    for (String task : tasks) {
        if (task == 'package') {
            mlopsSh(common + [label: 'Package', script: '''
diabetes-mlops package --model "$MLOPS_MODEL" --out "${MLOPS_BUNDLE:-$DIABETES_MLOPS_RUN_DIR/bundle}"
'''])
        } else if (task == 'deployQa' || task == 'deployProduction') {
            String environment = task == 'deployQa' ? 'qa' : 'production'
            mlopsSh(common + [label: "Deploy ${environment}".toString(), env: common.env + [MLOPS_ENV: environment],
                              script: '''
mkdir -p "$DIABETES_MLOPS_RUN_DIR"
diabetes-mlops --json deploy --env "$MLOPS_ENV" --target "$MLOPS_TARGET" --model "$MLOPS_MODEL" \\
    > "$DIABETES_MLOPS_RUN_DIR/deployment-$MLOPS_ENV.json"
cat "$DIABETES_MLOPS_RUN_DIR/deployment-$MLOPS_ENV.json"
'''])
        } else if (task == 'smokeTestQa' || task == 'smokeTestProduction') {
            String environment = task == 'smokeTestQa' ? 'qa' : 'production'
            mlopsSh(common + [label: "Smoke test ${environment}".toString(),
                              env: common.env + [MLOPS_ENV: environment],
                              script: libraryResource('org/diabetesmlops/jenkins/smoke-test.sh')])
        } else if (task == 'approve') {
            Map inputArgs = [message: cfg.approvalMessage, ok: 'Deploy to production']
            if (cfg.submitter) {
                inputArgs.submitter = cfg.submitter
            }
            timeout(time: cfg.approvalTimeoutHours, unit: 'HOURS') {
                input(inputArgs)
            }
        } else {
            undeployQa(cfg, common)
        }
    }
}

/** The tidy-up of `post`: stop the local QA server; never fails the build (QA may not be deployed). */
private void undeployQa(Map cfg, Map common) {
    if (StepConfig.oneOf('mlopsRelease', 'target', cfg.target, ['local', 'azure']) != 'local') {
        echo('mlopsRelease: QA on Azure stays deployed until the next release replaces it')
        return
    }
    int status = mlopsSh(common + [label: 'Undeploy QA', returnStatus: true, script: '''
diabetes-mlops undeploy qa
'''])
    if (status != 0) {
        echo("mlopsRelease: undeploy qa exited with ${status} (nothing deployed?)")
    }
}
