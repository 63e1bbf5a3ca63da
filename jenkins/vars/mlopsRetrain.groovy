import org.diabetesmlops.jenkins.StepConfig

/**
 * The Retrain stages: train a challenger into the run directory (DIABETES_MLOPS_RUN_DIR), evaluate it
 * against the champion, register it if it won. Exit code 3 of evaluate or register means "champion kept":
 * the build stays green, its description says so, and env.CHAMPION_KEPT = 'true' lets the Jenkinsfile
 * skip what follows. With target 'azure', evaluate and register (the registry) get the Azure credentials;
 * train runs on the agent without them. Settings: mlopsRetrain.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge('mlopsRetrain', [
        task: 'all',
        target: 'local',
        azureCredentialsId: 'azure-service-principal',
        venv: '.venv',
        runDir: null,
    ], config)
    Map common = [target: cfg.target, azureCredentialsId: cfg.azureCredentialsId, venv: cfg.venv,
                  env: [DIABETES_MLOPS_RUN_DIR: cfg.runDir]]
    for (String task : StepConfig.tasks('mlopsRetrain', cfg.task, ['train', 'evaluate', 'register'])) {
        if (env.CHAMPION_KEPT == 'true') {
            echo("mlopsRetrain: champion kept, ${task} skipped")
            continue
        }
        if (task == 'train') {
            mlopsSh(common + [label: 'Train', script: '''
diabetes-mlops train
'''])
        } else if (task == 'evaluate') {
            int status = mlopsSh(common + [label: 'Evaluate', returnStatus: true, credentials: true, script: '''
diabetes-mlops evaluate
'''])
            decide('evaluate', status)
        } else {
            int status = mlopsSh(common + [label: 'Register', returnStatus: true, credentials: true, script: '''
diabetes-mlops register
'''])
            decide('register', status)
        }
    }
}

/** Exit code 0: the challenger goes on; 3: the champion stays (green build, described); else the build fails. */
private void decide(String verb, int status) {
    if (status == 0) {
        env.CHAMPION_KEPT = 'false'
    } else if (status == 3) {
        env.CHAMPION_KEPT = 'true'
        currentBuild.description = "Champion kept: the challenger did not beat it (${verb}); nothing released"
        echo("diabetes-mlops ${verb}: champion kept (exit code 3), release skipped")
    } else {
        error("diabetes-mlops ${verb} failed with exit code ${status}")
    }
}
