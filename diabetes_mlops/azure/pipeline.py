"""The retraining pipeline as an Azure ML pipeline job (train -> evaluate -> register) and its schedule.

Each step runs this package's CLI on the compute cluster. A step gets the previous step's run directory
as a read-only input and copies it into its own output before adding files, so every step can be re-run
alone. "Champion kept" (exit 3) is a successful outcome of evaluate and register, not a failed step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diabetes_mlops.azure.jobs import INSTALL, environment, job_environment_variables

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import JobSchedule, PipelineJob

    from diabetes_mlops.config import Settings

SCHEDULE_TIMEOUT_SECONDS = 300
COPY_RUN_DIR = 'cp -r "${{inputs.run_dir}}/." "${{outputs.run_dir}}/"'
OK_OR_KEPT = "|| [ $? -eq 3 ]"


def _continue_run(verb: str) -> str:
    """Install, copy the previous step's run directory into this step's output, run ``verb`` on it."""
    return f'{INSTALL} && {COPY_RUN_DIR} && (diabetes-mlops {verb} --run-dir "${{{{outputs.run_dir}}}}" {OK_OR_KEPT})'


def retrain_pipeline(settings: Settings, package_uri: str) -> PipelineJob:
    """train -> evaluate -> register on the cluster, training on ``azure_training_data`` (or the built-in set)."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.dsl import pipeline

    env = environment(settings)
    plain = job_environment_variables(settings)
    with_registry = job_environment_variables(settings, registry=True)
    package = Input(type="uri_file", mode="download")
    run_in = Input(type="uri_folder", mode="download")
    run_out = Output(type="uri_folder", mode="rw_mount")

    train_inputs = {"package": package}
    train_line = f'{INSTALL} && diabetes-mlops train --run-dir "${{{{outputs.run_dir}}}}"'
    if settings.azure.training_data:
        train_inputs["data"] = Input(type="uri_file", mode="download")
        train_line += ' --data "${{inputs.data}}"'
    train = command(
        name="train",
        display_name="train",
        inputs=train_inputs,
        outputs={"run_dir": run_out},
        command=train_line,
        environment=env,
        environment_variables=plain,
    )
    evaluate, register = (
        command(
            name=verb,
            display_name=verb,
            inputs={"package": package, "run_dir": run_in},
            outputs={"run_dir": run_out},
            environment=env,
            environment_variables=with_registry,
            command=_continue_run(verb),
        )
        for verb in ("evaluate", "register")
    )

    data = {}
    if settings.azure.training_data:
        data["data"] = Input(type="uri_file", path=settings.azure.training_data, mode="download")

    # No annotations: the dsl reads them as input types, and this module's are strings.
    @pipeline(
        None,
        name="diabetes_retrain",
        description="diabetes-mlops: train, evaluate, register if better",
        default_compute=settings.azure.compute_name,
    )
    def retrain(package):
        trained = train(package=package, **data)
        evaluated = evaluate(package=package, run_dir=trained.outputs.run_dir)
        registered = register(package=package, run_dir=evaluated.outputs.run_dir)
        return {"run_dir": registered.outputs.run_dir}

    job = retrain(package=Input(type="uri_file", path=package_uri, mode="download"))
    job.experiment_name = settings.azure.experiment
    job.tags = {"created_by": "diabetes-mlops"}
    return job


def submit_pipeline(ml_client: MLClient, job: PipelineJob) -> PipelineJob:
    """Submit a pipeline run now; wait on it with ``jobs.wait_for_job``."""
    return ml_client.jobs.create_or_update(job)


def retrain_schedule(settings: Settings, job: PipelineJob) -> JobSchedule:
    """A cron schedule (``azure_schedule_cron`` in ``azure_schedule_timezone``) that submits ``job``."""
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    return JobSchedule(
        name=settings.azure.schedule_name,
        trigger=CronTrigger(expression=settings.azure.schedule_cron, time_zone=settings.azure.schedule_timezone),
        create_job=job,
        description="diabetes-mlops scheduled retraining",
        tags={"created_by": "diabetes-mlops"},
    )


def create_schedule(
    ml_client: MLClient, schedule: JobSchedule, timeout: float = SCHEDULE_TIMEOUT_SECONDS
) -> JobSchedule:
    """Create or replace the schedule and wait until Azure ML has it."""
    return ml_client.schedules.begin_create_or_update(schedule).result(timeout=timeout)


def delete_schedule(ml_client: MLClient, name: str, timeout: float = SCHEDULE_TIMEOUT_SECONDS) -> bool:
    """Delete the schedule; False when there was none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        ml_client.schedules.get(name)
    except ResourceNotFoundError:
        return False
    ml_client.schedules.begin_delete(name).result(timeout=timeout)
    return True
