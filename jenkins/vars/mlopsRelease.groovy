import org.diabetesmlops.jenkins.StepConfig

/**
 * The Release stages: `diabetes-mlops release --stage qa` (publish the bundle, on Azure the image by digest; deploy
 * QA; smoke-test it with the key and the expected version), the approval, then `release --stage production`
 * (deploy what passed QA, smoke-test it, move the `production` alias). The release itself lives in the CLI, the
 * same for every target; a stage with nothing to do says so and passes. 'undeployQa' is the tidy-up for `post`
 * (local target only). With target 'azure' every command runs inside withCredentials(azureServicePrincipal(...)).
 * Settings: mlopsRelease.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge(this, 'mlopsRelease', [
        task: 'all',
        target: 'local',
        model: 'champion',
        approvalTimeoutHours: 8,
        approvalMessage: 'Deploy the model that passed QA to production?',
        submitter: null,
        azureCredentialsId: 'azure-service-principal',
        scoringKeyCredentialsId: 'diabetes-scoring-key',
        venv: '.venv',
    ], config)
    Map common = [target: cfg.target, credentials: true, azureCredentialsId: cfg.azureCredentialsId,
                  scoringKeyCredentialsId: cfg.scoringKeyCredentialsId, venv: cfg.venv, env: [MLOPS_MODEL: cfg.model]]
    List tasks = cfg.task == 'undeployQa' ? ['undeployQa']
        : StepConfig.tasks(this, 'mlopsRelease', cfg.task, ['qa', 'approve', 'production'])
    for (String task : tasks) {
        if (task == 'qa' || task == 'production') {
            mlopsSh(common + [label: "Release ${task}".toString(), env: common.env + [MLOPS_STAGE: task], script: '''
diabetes-mlops release --stage "$MLOPS_STAGE" --target "$MLOPS_TARGET" --model "$MLOPS_MODEL"
'''])
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
    if (StepConfig.oneOf(this, 'mlopsRelease', 'target', cfg.target, ['local', 'azure']) != 'local') {
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
