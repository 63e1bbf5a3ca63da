import org.diabetesmlops.jenkins.StepConfig

/**
 * The Build stages: set up the virtual environment once per build, then code quality (ruff), unit tests
 * (JUnit XML and Cobertura coverage XML) and data tests (validate-data and the property-based schema tests).
 * `task` picks one of them (one per declarative stage) or 'all'. Settings: mlopsBuild.txt.
 */
def call(Map config = [:]) {
    Map cfg = StepConfig.merge(this, 'mlopsBuild', [
        task: 'all',
        python: 'python3',
        venv: '.venv',
        extras: 'dev',
        venvArgs: null,
        pytestArgs: null,
        dataTestArgs: null,
        reports: 'reports',
    ], config)
    // null values are left out, so VENV_ARGS, PYTEST_ARGS and DATA_TEST_ARGS of the agent (or the defaults
    // of the scripts) apply
    Map values = [MLOPS_PYTHON: cfg.python, MLOPS_EXTRAS: cfg.extras, MLOPS_REPORTS: cfg.reports,
                  VENV_ARGS: cfg.venvArgs, PYTEST_ARGS: cfg.pytestArgs, DATA_TEST_ARGS: cfg.dataTestArgs]
    List tasks = StepConfig.tasks(this, 'mlopsBuild', cfg.task, ['setup', 'codeQuality', 'unitTests', 'dataTests'])
    for (String task : tasks) {
        if (task == 'setup') {
            withEnv(StepConfig.envEntries(values + [MLOPS_VENV: cfg.venv])) {
                sh(label: 'Setup: virtual environment',
                   script: libraryResource('org/diabetesmlops/jenkins/setup-venv.sh'))
            }
        } else if (task == 'codeQuality') {
            mlopsSh(label: 'Code quality: ruff', venv: cfg.venv, env: values, script: '''
ruff check .
ruff format --check .
''')
        } else if (task == 'unitTests') {
            mlopsSh(label: 'Unit tests: pytest', venv: cfg.venv, env: values, script: '''
mkdir -p "$MLOPS_REPORTS"
# PYTEST_ARGS: which tests (default the whole suite); several words on purpose, hence unquoted
python -m pytest ${PYTEST_ARGS:-tests} -o junit_suite_name=unit-tests \\
    --junitxml="$MLOPS_REPORTS/junit-unit.xml" \\
    --cov=diabetes_mlops --cov-report=xml:"$MLOPS_REPORTS/coverage.xml" --cov-report=term
''')
        } else {
            mlopsSh(label: 'Data tests: validate-data and schema properties', venv: cfg.venv, env: values, script: '''
mkdir -p "$MLOPS_REPORTS"
diabetes-mlops validate-data --report "$MLOPS_REPORTS/validation.json"
# DATA_TEST_ARGS: the property-based data tests (default tests/test_schema.py)
python -m pytest ${DATA_TEST_ARGS:-tests/test_schema.py} -o junit_suite_name=data-tests \\
    --junitxml="$MLOPS_REPORTS/junit-data.xml"
''')
        }
    }
}
