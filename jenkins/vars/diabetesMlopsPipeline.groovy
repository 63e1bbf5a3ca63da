import org.diabetesmlops.jenkins.StepConfig

/**
 * The whole diabetes-mlops pipeline, for a repository whose Jenkinsfile is just
 *     @Library('diabetes-mlops') _
 *     diabetesMlopsPipeline(approvalTimeoutHours: 4)
 * Build on every branch; Retrain and Release on the main branch (and nightly there, where Train reports drift
 * and trains only if a retrain is due); the champion kept by evaluate or register, or no retrain due, skips
 * Release. The same stages as the Jenkinsfile at the root of diabetes-mlops (a test keeps them identical).
 * Settings: diabetesMlopsPipeline.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge('diabetesMlopsPipeline', [
        mainBranch: 'main',
        cron: 'H 2 * * *',
        timeoutHours: 10,
        keepBuilds: '30',
        keepArtifactBuilds: '10',
        python: 'python3',
        venv: '.venv',
        pytestArgs: null,
        dataTestArgs: null,
        model: 'champion',
        approvalTimeoutHours: 8,
        submitter: null,
        azureCredentialsId: 'azure-service-principal',
    ], config)
    Map build = [python: cfg.python, venv: cfg.venv, pytestArgs: cfg.pytestArgs, dataTestArgs: cfg.dataTestArgs]
    Map retrain = [venv: cfg.venv, azureCredentialsId: cfg.azureCredentialsId]
    Map release = [venv: cfg.venv, azureCredentialsId: cfg.azureCredentialsId, model: cfg.model,
                   approvalTimeoutHours: cfg.approvalTimeoutHours, submitter: cfg.submitter]

    pipeline {
        agent any

        options {
            timeout(time: cfg.timeoutHours, unit: 'HOURS')
            timestamps()
            disableConcurrentBuilds()
            buildDiscarder(logRotator(numToKeepStr: cfg.keepBuilds, artifactNumToKeepStr: cfg.keepArtifactBuilds))
        }

        triggers {
            cron(env.BRANCH_NAME == cfg.mainBranch ? cfg.cron : '')
        }

        parameters {
            choice(name: 'TARGET', choices: ['local', 'azure'],
                   description: 'Where the registry and the deployments live: this agent (local) or Azure ML.')
            booleanParam(
                name: 'FORCE_RETRAIN', defaultValue: false,
                description: 'Train always: on other branches too (nothing registered), nightly even if not due.')
            booleanParam(name: 'SKIP_APPROVAL', defaultValue: false,
                         description: 'Deploy production without waiting for the approval.')
        }

        environment {
            DIABETES_MLOPS_HOME = "${env.WORKSPACE}/.mlops"
            DIABETES_MLOPS_RUN_DIR = "${env.WORKSPACE}/.mlops/runs/build-${env.BUILD_NUMBER}"
        }

        stages {
            stage('Build') {
                stages {
                    stage('Setup') {
                        steps { mlopsBuild(build + [task: 'setup']) }
                    }
                    stage('Code quality') {
                        steps { mlopsBuild(build + [task: 'codeQuality']) }
                    }
                    stage('Unit tests') {
                        steps { mlopsBuild(build + [task: 'unitTests']) }
                    }
                    stage('Data tests') {
                        steps { mlopsBuild(build + [task: 'dataTests']) }
                    }
                }
            }
            stage('Retrain') {
                when {
                    anyOf {
                        branch cfg.mainBranch
                        expression { params.FORCE_RETRAIN }
                    }
                }
                stages {
                    stage('Train') {
                        steps {
                            mlopsRetrain(retrain + [task: 'train', target: params.TARGET, force: params.FORCE_RETRAIN])
                        }
                    }
                    stage('Evaluate') {
                        when { expression { env.CHAMPION_KEPT != 'true' } }
                        steps { mlopsRetrain(retrain + [task: 'evaluate', target: params.TARGET]) }
                    }
                    stage('Register') {
                        when {
                            branch cfg.mainBranch
                            expression { env.CHAMPION_KEPT != 'true' }
                        }
                        steps { mlopsRetrain(retrain + [task: 'register', target: params.TARGET]) }
                    }
                }
            }
            stage('Release') {
                when {
                    branch cfg.mainBranch
                    expression { env.CHAMPION_KEPT != 'true' }
                }
                stages {
                    stage('Release QA') {
                        steps { mlopsRelease(release + [task: 'qa', target: params.TARGET]) }
                    }
                    stage('Approve production') {
                        when {
                            branch cfg.mainBranch
                            not { expression { params.SKIP_APPROVAL } }
                        }
                        steps { mlopsRelease(release + [task: 'approve', target: params.TARGET]) }
                    }
                    stage('Release production') {
                        steps { mlopsRelease(release + [task: 'production', target: params.TARGET]) }
                    }
                }
            }
        }

        post {
            always {
                junit(testResults: 'reports/junit-*.xml', allowEmptyResults: true)
                recordCoverage(tools: [[parser: 'COBERTURA', pattern: 'reports/coverage.xml']])
                archiveArtifacts(artifacts: "reports/**, .mlops/runs/build-${env.BUILD_NUMBER}/**",
                                 allowEmptyArchive: true, fingerprint: true)
            }
            cleanup {
                mlopsRelease(release + [task: 'undeployQa', target: params.TARGET])
            }
        }
    }
}
