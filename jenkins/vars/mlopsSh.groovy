import org.diabetesmlops.jenkins.StepConfig

/**
 * Run diabetes-mlops command lines in the build's virtual environment (made by mlopsBuild task 'setup').
 * With target 'azure' and credentials: true the lines run inside withCredentials with the Azure service
 * principal and the scoring key of the public endpoints (a Secret text credential), and only then: the secret reaches the CLI through the environment, never through a Groovy string. Only builds
 * of the main branch (MLOPS_MAIN_BRANCH, default 'main') get them: a branch or pull request runs code anyone
 * who can push may have written, so there the step fails before binding anything.
 * Returns the exit code with returnStatus: true. Settings: mlopsSh.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge(this, 'mlopsSh', [
        script: null,
        label: null,
        returnStatus: false,
        target: 'local',
        credentials: false,
        azureCredentialsId: 'azure-service-principal',
        scoringKeyCredentialsId: 'diabetes-scoring-key',
        venv: '.venv',
        env: [:],
    ], config)
    if (!cfg.script) {
        error('mlopsSh: script is required')
    }
    if (cfg.script instanceof GString) {
        error('mlopsSh: the script must be a single-quoted string; pass values through env')
    }
    String target = StepConfig.oneOf(this, 'mlopsSh', 'target', cfg.target, ['local', 'azure'])
    Map values = [MLOPS_VENV: cfg.venv, MLOPS_TARGET: target]
    if (target == 'azure') {
        values.DIABETES_MLOPS_REGISTRY_BACKEND = 'azureml'
    }
    values.putAll(cfg.env)
    Map shArgs = [script: libraryResource('org/diabetesmlops/jenkins/prelude.sh') + cfg.script,
                  returnStatus: cfg.returnStatus]
    if (cfg.label) {
        shArgs.label = cfg.label
    }
    def result = null
    withEnv(StepConfig.envEntries(values)) {
        if (target == 'azure' && cfg.credentials) {
            refuseUntrusted()
            List bindings = [azureServicePrincipal(credentialsId: cfg.azureCredentialsId,
                                                   subscriptionIdVariable: 'AZURE_SUBSCRIPTION_ID',
                                                   clientIdVariable: 'AZURE_CLIENT_ID',
                                                   clientSecretVariable: 'AZURE_CLIENT_SECRET',
                                                   tenantIdVariable: 'AZURE_TENANT_ID')]
            // None with azure_key_vault: each environment's key is read from the vault, not Jenkins' store.
            if (cfg.scoringKeyCredentialsId) {
                bindings << string(credentialsId: cfg.scoringKeyCredentialsId, variable: 'DIABETES_MLOPS_SCORING_KEY')
            }
            withCredentials(bindings) {
                result = sh(shArgs)
            }
        } else {
            result = sh(shArgs)
        }
    }
    return result
}

/** error() on a pull request or a branch other than the main one: their code must never see the Azure secret. */
private void refuseUntrusted() {
    String mainBranch = env.MLOPS_MAIN_BRANCH ?: 'main'
    if (env.CHANGE_ID || (env.BRANCH_NAME && env.BRANCH_NAME != mainBranch)) {
        error("mlopsSh: Azure credentials are bound only on builds of ${mainBranch}, not on " +
              "'${env.BRANCH_NAME}'${env.CHANGE_ID ? ' (a pull request)' : ''}: use TARGET=local there")
    }
}
