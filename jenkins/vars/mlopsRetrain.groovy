import org.diabetesmlops.jenkins.StepConfig

/**
 * The Retrain stages: train a challenger into the run directory (DIABETES_MLOPS_RUN_DIR), evaluate it
 * against the champion, register it if it won. Exit code 3 of evaluate or register means "champion kept":
 * the build stays green, its description says so, and env.CHAMPION_KEPT = 'true' lets the Jenkinsfile
 * skip what follows. On a build the timer started (the nightly cron), train first writes a drift report of
 * the last day's scoring logs, then trains only if a retrain is due (`train --if-due`; exit 3: not due, which
 * also sets env.CHAMPION_KEPT). With target 'azure', train runs as an Azure ML command job on the compute
 * cluster (the agent waits and downloads its run directory), and every step gets the Azure credentials: the job,
 * the registry (evaluate, register), the scoring logs and champion (the nightly drift report, `train --if-due`).
 * Settings: mlopsRetrain.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge(this, 'mlopsRetrain', [
        task: 'all',
        target: 'local',
        force: false,
        ifDue: null,
        driftSince: '24h',
        azureCredentialsId: 'azure-service-principal',
        scoringKeyCredentialsId: 'diabetes-scoring-key',
        venv: '.venv',
        runDir: null,
    ], config)
    Map common = [target: cfg.target, azureCredentialsId: cfg.azureCredentialsId,
                  scoringKeyCredentialsId: cfg.scoringKeyCredentialsId, venv: cfg.venv,
                  env: [DIABETES_MLOPS_RUN_DIR: cfg.runDir]]
    for (String task : StepConfig.tasks(this, 'mlopsRetrain', cfg.task, ['train', 'evaluate', 'register'])) {
        if (env.CHAMPION_KEPT == 'true') {
            echo("mlopsRetrain: champion kept, ${task} skipped")
            continue
        }
        if (task == 'train' && onlyIfDue(cfg)) {
            driftReport(cfg, common)
            int status = mlopsSh(common + [label: 'Train if due', returnStatus: true, credentials: true, script: '''
diabetes-mlops train --if-due --target "$MLOPS_TARGET"
'''])
            decideDue(status)
        } else if (task == 'train') {
            mlopsSh(common + [label: 'Train', credentials: true, script: '''
diabetes-mlops train --target "$MLOPS_TARGET"
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

/** Whether train waits for a retrain to be due: never when forced; else ifDue, else on timer-started builds. */
private boolean onlyIfDue(Map cfg) {
    if (cfg.force) {
        return false
    }
    if (cfg.ifDue != null) {
        return cfg.ifDue as boolean
    }
    return !currentBuild.getBuildCauses('hudson.triggers.TimerTrigger$TimerTriggerCause').isEmpty()
}

/** The drift report of recent scoring logs, into the run directory; exit 4 (drift) is recorded, not a failure. */
private void driftReport(Map cfg, Map common) {
    int status = mlopsSh(common + [label: 'Drift report', returnStatus: true, credentials: true,
                                   env: common.env + [MLOPS_DRIFT_SINCE: cfg.driftSince], script: '''
diabetes-mlops drift --since "$MLOPS_DRIFT_SINCE" --out "$DIABETES_MLOPS_RUN_DIR/drift"
'''])
    if (status == 4) {
        describe("Drift in the scoring logs of the last ${cfg.driftSince}: a retrain is due")
        echo('diabetes-mlops drift: drift detected (exit code 4), recorded; train --if-due will retrain')
    } else if (status != 0) {
        error("diabetes-mlops drift failed with exit code ${status}")
    }
}

/** Exit code 0 of train --if-due: a challenger was trained; 3: not due (green build, described); else failure. */
private void decideDue(int status) {
    if (status == 3) {
        env.CHAMPION_KEPT = 'true'
        describe('Retrain not due: nothing trained or released (the reasons are in the Train log)')
        echo('diabetes-mlops train --if-due: retrain not due (exit code 3), evaluate, register and release skipped')
    } else if (status != 0) {
        error("diabetes-mlops train --if-due failed with exit code ${status}")
    }
}

/** Exit code 0: the challenger goes on; 3: the champion stays (green build, described); else the build fails. */
private void decide(String verb, int status) {
    if (status == 0) {
        env.CHAMPION_KEPT = 'false'
    } else if (status == 3) {
        env.CHAMPION_KEPT = 'true'
        describe("Champion kept: the challenger did not beat it (${verb}); nothing released")
        echo("diabetes-mlops ${verb}: champion kept (exit code 3), release skipped")
    } else {
        error("diabetes-mlops ${verb} failed with exit code ${status}")
    }
}

/** Add a sentence to the build description (a drift alarm comes before what the build then decided). */
private void describe(String text) {
    currentBuild.description = currentBuild.description ? "${currentBuild.description}; ${text}" : text
}
