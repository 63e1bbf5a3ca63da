"""``diabetes-mlops score-batch --target azure``: the same ``score-batch`` verb as a command job on the cluster.

The model version is resolved here, at submission, and travels as a folder input (``model.skops``,
``affine.json``, ``metadata.json``: the directory ``--model-dir`` reads), so the job scores with exactly the
version asked for even if an alias moves while it runs, whichever registry holds it. The input file is
uploaded unless it is already an Azure ML reference. The job writes the predictions, the rejects and its
own result into one folder output; once it has completed they are downloaded and the predictions and
rejects renamed into place as a local run leaves them. On the datastore::

    diabetes-mlops/batch/<batch id>/input/<INPUT name>          the file scored (a local INPUT, uploaded)
    diabetes-mlops/batch/<batch id>/model/                      the model version's directory
    diabetes-mlops/batch/<batch id>/scored/<OUTPUT name>        the predictions
    diabetes-mlops/batch/<batch id>/scored/<OUTPUT name>.rejects.csv   rejected rows, when any
    diabetes-mlops/batch/<batch id>/scored/score-batch.json     the job's BatchResult
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.azure.jobs import INSTALL, kit_command, unique_job_name, upload_source, wait_for_job
from diabetes_mlops.batch import BatchResult
from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Command

    from diabetes_mlops.azure.artifacts import DatastoreFiles
    from diabetes_mlops.config import Settings

BATCH_PREFIX = "diabetes-mlops/batch"
RESULT_FILE = "score-batch.json"
REJECTS_SUFFIX = ".rejects.csv"


@dataclass(frozen=True)
class AzureBatch:
    """A finished batch-scoring job: its name, its studio page, and what it scored (paths on this machine)."""

    job_name: str
    studio_url: str | None
    result: BatchResult

    def to_dict(self) -> dict[str, object]:
        return {"job_name": self.job_name, "studio_url": self.studio_url, **self.result.to_dict()}

    def summary(self) -> str:
        """The run's summary, then the job that ran it."""
        return f"{self.result.summary()}\nAzure ML job: {self.studio_url or self.job_name}"


def batch_job(
    settings: Settings,
    batch_id: str,
    package_uri: str,
    data_uri: str,
    model_uri: str,
    scored_uri: str,
    output_name: str,
    chunk_rows: int,
    workers: int | None = None,
) -> Command:
    """A command job that installs the package's wheel and runs ``diabetes-mlops score-batch`` on its inputs,
    writing the predictions, the rejects and the result (JSON) into its ``scored`` output."""
    from azure.ai.ml import Input, Output

    scored = '"${{outputs.scored}}"'
    line = (
        f'{INSTALL} && diabetes-mlops --json score-batch "${{{{inputs.data}}}}" {scored}/{shlex.quote(output_name)}'
        f' --model-dir "${{{{inputs.model}}}}" --chunk-rows {chunk_rows}'
        + (f" --workers {workers}" if workers else "")  # else all the node's cores
        + f" > {scored}/{RESULT_FILE}"
    )
    inputs = {
        "package": Input(type="uri_file", path=package_uri, mode="download"),
        "data": Input(type="uri_file", path=data_uri, mode="download"),
        "model": Input(type="uri_folder", path=model_uri, mode="download"),
    }
    outputs = {"scored": Output(type="uri_folder", path=scored_uri, mode="rw_mount")}
    shown = f"diabetes-mlops score-batch {batch_id}"
    return kit_command(
        settings, unique_job_name("score-batch", batch_id), shown, line, inputs, outputs, {"batch_id": batch_id}
    )


def score_batch_on_azure(
    settings: Settings,
    ml_client: MLClient,
    files: DatastoreFiles,
    data: str,
    output_path: Path,
    model_dir: Path,
    chunk_rows: int,
    workers: int | None = None,
    poll_seconds: float = 15.0,
    on_status: Callable[[str], None] | None = None,
) -> AzureBatch:
    """Ensure the cluster, upload the input and the model, run the job, wait, and put its files at
    ``output_path`` and ``output_path.rejects.csv`` (each replaced whole).

    ``data`` is a local file or an Azure ML reference (``azureml:<asset>@latest``, a datastore URI).
    """
    from diabetes_mlops.azure.compute import ensure_compute

    local = Path(data)
    if not local.is_file() and "://" not in data and not data.startswith("azureml:"):
        raise DataError(f"{data}: no such file (nor an Azure ML data reference)")
    ensure_compute(ml_client, settings)
    batch_id = uuid.uuid4().hex[:12]
    prefix = f"{BATCH_PREFIX}/{batch_id}"
    data_uri = data
    if local.is_file():
        with open(local, "rb") as fh:
            files.container.upload_blob(f"{prefix}/input/{local.name}", fh, overwrite=True)
        data_uri = files.uri(f"{prefix}/input") + local.name
    files.upload_dir(model_dir, f"{prefix}/model")
    output_path = Path(output_path)
    job = batch_job(
        settings,
        batch_id,
        upload_source(files),
        data_uri,
        files.uri(f"{prefix}/model"),
        files.uri(f"{prefix}/scored"),
        output_path.name,
        chunk_rows,
        workers,
    )
    submitted = ml_client.jobs.create_or_update(job)
    wait_for_job(ml_client, submitted.name, settings.azure.job_timeout, poll_seconds, on_status, submitted.studio_url)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rejects = output_path.with_name(output_path.name + REJECTS_SUFFIX)
    # Downloaded beside the output, so each file is renamed into place on the same file system.
    with tempfile.TemporaryDirectory(dir=output_path.parent, prefix=f".{output_path.name}.") as tmp:
        files.download_dir(f"{prefix}/scored", Path(tmp))
        ran = BatchResult(**json.loads((Path(tmp) / RESULT_FILE).read_text()))
        os.replace(Path(tmp) / output_path.name, output_path)
        if ran.rejects_file:
            os.replace(Path(tmp) / rejects.name, rejects)
        else:
            rejects.unlink(missing_ok=True)
    result = dataclasses.replace(
        ran, input=data, output=str(output_path), rejects_file=str(rejects) if ran.rejects_file else None
    )
    return AzureBatch(submitted.name, submitted.studio_url, result)
