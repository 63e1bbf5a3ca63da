import org.diabetesmlops.jenkins.StepConfig

/**
 * The whole diabetes-mlops pipeline, for a repository whose Jenkinsfile is just
 *     @Library('diabetes-mlops') _
 *     diabetesMlopsPipeline(approvalTimeoutHours: 4, agentLabel: 'mlops')
 * Build on every branch; Retrain and Release on the main branch (and nightly there, where Train reports drift
 * and trains only if a retrain is due, and target and approval come from nightlyTarget and nightlyApproval);
 * the champion kept by evaluate or register, or no retrain due, skips Release. No executor is held while the
 * approval waits. The same stages as the Jenkinsfile at the root of diabetes-mlops (a test keeps them
 * identical). Settings: diabetesMlopsPipeline.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge(this, 'diabetesMlopsPipeline', [
        mainBranch: 'main',
        cron: 'H 2 * * *',
        timeoutHours: 10,
        keepBuilds: '30',
        keepArtifactBuilds: '10',
        agentLabel: '',
        python: 'python3',
        venv: '.venv',
        pytestArgs: null,
        dataTestArgs: null,
        model: 'champion',
        approvalTimeoutHours: 8,
        submitter: null,
        nightlyTarget: 'local',
        nightlyApproval: 'skip',
        azureCredentialsId: 'azure-service-principal',
        scoringKeyCredentialsId: 'diabetes-scoring-key',
    ], config)
    StepConfig.oneOf(this, 'diabetesMlopsPipeline', 'nightlyTarget', cfg.nightlyTarget, ['local', 'azure'])
    StepConfig.oneOf(this, 'diabetesMlopsPipeline', 'nightlyApproval', cfg.nightlyApproval, ['skip', 'qa'])
    Map build = [python: cfg.python, venv: cfg.venv, pytestArgs: cfg.pytestArgs, dataTestArgs: cfg.dataTestArgs]
    Map credentials = [azureCredentialsId: cfg.azureCredentialsId, scoringKeyCredentialsId: cfg.scoringKeyCredentialsId]
    Map retrain = [venv: cfg.venv] + credentials
    Map release = [venv: cfg.venv, model: cfg.model] + credentials
    String timerCause = 'hudson.triggers.TimerTrigger$TimerTriggerCause'

    pipeline {
        agent none

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
            // A timer build runs with the parameter defaults: its target and approval policy come from the settings.
            MLOPS_BUILD_TARGET = "${currentBuild.getBuildCauses(timerCause) ? cfg.nightlyTarget : params.TARGET}"
            MLOPS_NIGHTLY_APPROVAL = "${cfg.nightlyApproval}"
            MLOPS_MAIN_BRANCH = "${cfg.mainBranch}"
        }

        stages {
            stage('Build') {
                agent { label cfg.agentLabel }
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
                post {
                    always {
                        junit(testResults: 'reports/junit-*.xml', allowEmptyResults: true, skipOldReports: true)
                        recordCoverage(tools: [[parser: 'COBERTURA', pattern: 'reports/coverage.xml']],
                                       enabledForFailure: true)
                        archiveArtifacts(artifacts: 'reports/**', allowEmptyArchive: true, fingerprint: true)
                    }
                }
            }
            stage('Retrain') {
                agent { label cfg.agentLabel }
                when {
                    beforeAgent true
                    anyOf {
                        branch cfg.mainBranch
                        expression { params.FORCE_RETRAIN }
                    }
                }
                stages {
                    stage('Train') {
                        steps {
                            mlopsRetrain(retrain + [task: 'train', target: env.MLOPS_BUILD_TARGET,
                                                    force: params.FORCE_RETRAIN])
                        }
                    }
                    stage('Evaluate') {
                        when { expression { env.CHAMPION_KEPT != 'true' } }
                        steps { mlopsRetrain(retrain + [task: 'evaluate', target: env.MLOPS_BUILD_TARGET]) }
                    }
                    stage('Register') {
                        when {
                            branch cfg.mainBranch
                            expression { env.CHAMPION_KEPT != 'true' }
                        }
                        steps { mlopsRetrain(retrain + [task: 'register', target: env.MLOPS_BUILD_TARGET]) }
                    }
                }
                post {
                    always {
                        archiveArtifacts(artifacts: ".mlops/runs/build-${env.BUILD_NUMBER}/**", allowEmptyArchive: true)
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
                        agent { label cfg.agentLabel }
                        steps {
                            milestone(ordinal: 1, label: 'Release QA')
                            mlopsRelease(release + [task: 'qa', target: env.MLOPS_BUILD_TARGET])
                        }
                        post {
                            always {
                                archiveArtifacts(artifacts: ".mlops/runs/build-${env.BUILD_NUMBER}/**",
                                                 allowEmptyArchive: true)
                            }
                            cleanup {
                                mlopsRelease(release + [task: 'undeployQa', target: env.MLOPS_BUILD_TARGET])
                            }
                        }
                    }
                    stage('Approve production') {
                        when {
                            beforeInput true
                            not { expression { params.SKIP_APPROVAL } }
                            not { triggeredBy 'TimerTrigger' }
                        }
                        options { timeout(time: cfg.approvalTimeoutHours, unit: 'HOURS') }
                        input {
                            message 'Deploy the model that passed QA to production?'
                            ok 'Deploy to production'
                            submitter cfg.submitter
                            submitterParameter 'APPROVER'
                        }
                        steps { echo("Production release approved by ${env.APPROVER}") }
                    }
                    stage('Release production') {
                        agent { label cfg.agentLabel }
                        when {
                            beforeAgent true
                            anyOf {
                                not { triggeredBy 'TimerTrigger' }
                                environment name: 'MLOPS_NIGHTLY_APPROVAL', value: 'skip'
                            }
                        }
                        steps {
                            milestone(ordinal: 2, label: 'Release production')
                            mlopsRelease(release + [task: 'production', target: env.MLOPS_BUILD_TARGET])
                        }
                        post {
                            always {
                                archiveArtifacts(artifacts: ".mlops/runs/build-${env.BUILD_NUMBER}/**",
                                                 allowEmptyArchive: true)
                            }
                        }
                    }
                }
            }
        }
    }
}
