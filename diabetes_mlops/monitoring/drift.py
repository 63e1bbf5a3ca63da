"""Drift report: recent scoring logs against the champion's training data, per feature and for predictions.

The steps have their own modules: ``logged_rows`` reads the logs, ``reference`` finds the champion's
training data, ``statistics`` compares each column (PSI and Kolmogorov-Smirnov, both must agree),
``drift_render`` writes the files people read, and ``verdict`` keeps the outcome for ``retrain --if-due``.
With fewer than ``drift_min_rows`` logged rows no test is run and the report says so.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops import progress
from diabetes_mlops.data import FEATURES
from diabetes_mlops.errors import MlopsError
from diabetes_mlops.monitoring.logged_rows import LoggedRows, read_logged_rows
from diabetes_mlops.monitoring.reference import Reference, champion_reference
from diabetes_mlops.monitoring.statistics import ColumnDrift, Thresholds, compare_column
from diabetes_mlops.monitoring.verdict import STATUS_DRIFT, STATUS_OK, STATUS_TOO_FEW, Verdict
from diabetes_mlops.runs import new_id

if TYPE_CHECKING:
    import numpy as np

    from diabetes_mlops.config import Settings
    from diabetes_mlops.monitoring.sinks import LogSink
    from diabetes_mlops.registry import Registry

    # Reference values and logged values, per compared column.
    Samples = dict[str, tuple[np.ndarray, np.ndarray]]

PREDICTION = "prediction"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A start time from ``30m``/``24h``/``7d``/``2w`` (that long before ``now``) or an ISO timestamp (UTC if naive)."""
    match = _DURATION.match(text)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MlopsError(f"--since {text!r}: expected a duration like 24h, 30m, 7d or an ISO timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class DriftReport:
    """The verdict (``ok``, ``drift`` or ``insufficient_data``), per-column results and where files went."""

    id: str
    created: str
    since: str | None
    status: str
    message: str
    n_rows: int
    n_requests: int
    thresholds: Thresholds
    reference_source: str
    reference_fingerprint: str
    reference_is_champions: bool
    champion_version: int | None
    model_versions: dict[str, int]
    columns: list[ColumnDrift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out_dir: str | None = None

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "drifted": self.drifted}

    def __repr__(self) -> str:
        from diabetes_mlops.display import drift_repr

        return drift_repr(self)

    def _repr_markdown_(self) -> str:
        from diabetes_mlops.display import drift_markdown

        return drift_markdown(self)

    def summary(self) -> str:
        """Human text: the verdict, then one line per column."""
        from diabetes_mlops.monitoring.drift_render import summary

        return summary(self)

    def markdown(self) -> str:
        """The summary as a markdown page, with the plots of drifting columns."""
        from diabetes_mlops.monitoring.drift_render import markdown

        return markdown(self)


def drift_report(
    settings: Settings,
    sink: LogSink,
    registry: Registry,
    *,
    since: datetime | None = None,
    out_dir: Path | None = None,
) -> DriftReport:
    """Compare the logs since ``since`` with the champion's training data; write the report files."""
    from diabetes_mlops.monitoring.drift_render import write_report

    champion_version = registry.aliases(settings.model_name).get("champion")
    champion = registry.get(settings.model_name, champion_version) if champion_version else None
    progress.update("reading the scoring logs (requests)")
    logged = read_logged_rows(sink, since)
    progress.update("loading the reference data")
    reference = champion_reference(settings, champion.data_fingerprint if champion else None)
    report = DriftReport(
        id=new_id(),  # the run directories' format: report and run ids sort together by time
        created=datetime.now(UTC).isoformat(timespec="microseconds"),
        since=since.isoformat(timespec="seconds") if since else None,
        status=STATUS_OK,
        message="",
        n_rows=len(logged.inputs),
        n_requests=logged.n_requests,
        thresholds=Thresholds.from_settings(settings),
        reference_source=reference.source,
        reference_fingerprint=reference.fingerprint,
        reference_is_champions=reference.is_champions,
        champion_version=champion_version,
        model_versions=logged.model_versions,
        notes=[reference.note] if reference.note else [],
    )
    samples: Samples = {}
    if report.n_rows < report.thresholds.min_rows:
        report.status = STATUS_TOO_FEW
        report.message = (
            f"too few logged rows for a sound test: {report.n_rows} since {report.since or 'the first log'}, "
            f"at least {report.thresholds.min_rows} are needed; no drift test was run"
        )
    else:
        samples = _samples(settings, registry, report, reference, logged)
        _compare(report, samples)
    out = Path(out_dir) if out_dir is not None else settings.drift_dir / report.id
    progress.update("writing the report")
    write_report(report, out, samples)
    record_verdict(settings, report)
    return report


def _samples(
    settings: Settings, registry: Registry, report: DriftReport, reference: Reference, logged: LoggedRows
) -> Samples:
    """Each feature's reference and logged values, and the predictions when there is a champion to compare."""
    import numpy as np

    ref = reference.frame.loc[:, list(FEATURES)].to_numpy(dtype="float64")
    samples: Samples = {name: (ref[:, i], logged.inputs[:, i]) for i, name in enumerate(FEATURES)}
    version = report.champion_version
    if version is None:
        report.notes.append("no champion: the prediction distribution is not compared")
        return samples
    expected = registry.load(settings.model_name, version).predict(reference.frame.loc[:, list(FEATURES)])
    samples[PREDICTION] = (np.asarray(expected, dtype="float64"), logged.predictions)
    other = sorted(v for v in logged.model_versions if v != str(version))
    if other:
        report.notes.append(
            f"some logged predictions came from model versions {', '.join(other)}, not the champion "
            f"{version}; a prediction shift may be the model's, not the population's"
        )
    return samples


def _compare(report: DriftReport, samples: Samples) -> None:
    """Compare every sampled column and set the report's status and message from the result."""
    progress.update(f"comparing {len(samples)} columns over {report.n_rows} rows")
    report.columns = [compare_column(name, ref, cur, report.thresholds) for name, (ref, cur) in samples.items()]
    drifted = report.drifted
    report.status = STATUS_DRIFT if drifted else STATUS_OK
    report.message = (
        f"drift in {', '.join(drifted)} over {report.n_rows} logged rows"
        if drifted
        else f"no drift beyond the thresholds over {report.n_rows} logged rows"
    )


def record_verdict(settings: Settings, report: DriftReport) -> None:
    """Keep the report's verdict in ``<home>/drift/last.json``, where ``retrain --if-due`` reads it."""
    from diabetes_mlops.monitoring.drift_render import REPORT_FILE

    report_file = str(Path(report.out_dir or "") / REPORT_FILE)
    Verdict(report.id, report.created, report.status, report.drifted, report_file).save(settings)
