"""Drift report: recent scoring logs against the champion's training data, per feature and for predictions.

Each feature is compared with two measures: the population stability index (PSI, over ten quantile bins
of the reference) says how far the distribution moved, and the two-sample Kolmogorov-Smirnov test says
whether the move is more than sampling noise. A column drifts when both agree: PSI at or above
``drift_psi_threshold`` and a KS p-value below ``drift_ks_pvalue``. Requiring both keeps a small batch's
noise (large PSI by chance) and a huge batch's trivial shifts (tiny p-value for a negligible move) from
raising alarms. With fewer than ``drift_min_rows`` logged rows no test is run and the report says so.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops import progress
from diabetes_mlops.data import FEATURES
from diabetes_mlops.errors import MlopsError
from diabetes_mlops.runs import new_id

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from diabetes_mlops.config import Settings
    from diabetes_mlops.monitoring.store import LogSink
    from diabetes_mlops.registry import Registry

REPORT_FILE = "drift.json"
SUMMARY_FILE = "drift.md"
LAST_FILE = "last.json"
PREDICTION = "prediction"
PSI_BINS = 10
# Floor on a bin's share so an empty bin on one side gives a large, finite PSI term instead of infinity.
PSI_EPSILON = 1e-4
# Logged records turned into arrays at a time: bounds the Python objects alive while reading.
READ_CHUNK = 65_536
STATUS_OK = "ok"
STATUS_DRIFT = "drift"
STATUS_TOO_FEW = "insufficient_data"
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


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The inner edges of ``bins`` equal-frequency bins of the reference, without repeats (ties merge bins)."""
    import numpy as np

    return np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    import numpy as np

    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.maximum(counts / max(len(values), 1), PSI_EPSILON)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference``, over the reference's quantile bins."""
    import numpy as np

    edges = quantile_edges(reference, bins)
    expected, actual = _shares(reference, edges), _shares(current, edges)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted, and how many logged rows a sound test needs."""

    psi: float = 0.2
    ks_pvalue: float = 0.01
    min_rows: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.drift_psi_threshold, settings.drift_ks_pvalue, settings.drift_min_rows)


@dataclass
class ColumnDrift:
    """One column compared: PSI, KS statistic and p-value, the means, and whether it drifted."""

    column: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifted: bool
    reference_rows: int
    current_rows: int
    reference_mean: float
    current_mean: float
    plot: str | None = None


def compare_column(column: str, reference: np.ndarray, current: np.ndarray, thresholds: Thresholds) -> ColumnDrift:
    """PSI and KS of one column; it drifted when PSI reaches the threshold and KS is significant."""
    value = psi(reference, current)
    statistic, pvalue = ks_test(reference, current)
    return ColumnDrift(
        column=column,
        psi=value,
        ks_statistic=statistic,
        ks_pvalue=pvalue,
        drifted=value >= thresholds.psi and pvalue < thresholds.ks_pvalue,
        reference_rows=len(reference),
        current_rows=len(current),
        reference_mean=float(reference.mean()),
        current_mean=float(current.mean()),
    )


@dataclass
class Reference:
    """The data the logs are compared with: what it is, its fingerprint, and whether it is the champion's."""

    frame: pd.DataFrame
    source: str
    fingerprint: str
    is_champions: bool
    note: str | None = None


@dataclass
class LoggedRows:
    """Every input row and prediction logged since a time, and how many requests each model version served."""

    inputs: np.ndarray
    predictions: np.ndarray
    n_requests: int
    model_versions: dict[str, int]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small, acyclic lists are built.

    Each collection would walk every list kept so far, which made reading 1M records a third slower;
    the records hold no cycles, so reference counting frees everything that is dropped meanwhile.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_logged_rows(sink: LogSink, since: datetime | None) -> LoggedRows:
    """Collect the logged rows in bulk: records in chunks, each chunk turned into numpy arrays at once.

    Chunks keep the Python objects of at most ``READ_CHUNK`` records alive (not a million), and
    map/zip/fromiter keep the per-record work out of the interpreter loop.
    """
    from collections import Counter
    from itertools import chain, filterfalse, islice

    import numpy as np

    width = len(FEATURES)
    real = filterfalse(methodcaller("get", "synthetic"), sink.read(since))
    records = map(itemgetter("inputs", "predictions", "model_version"), real)
    matrices: list[np.ndarray] = []
    predictions: list[np.ndarray] = []
    versions: Counter[object] = Counter()
    with _gc_paused():
        while parts := list(islice(records, READ_CHUNK)):
            inputs, outputs, served_by = zip(*parts, strict=True)
            n_rows = sum(map(len, inputs))
            try:
                if sum(map(len, chain.from_iterable(inputs))) != width * n_rows:
                    raise MlopsError(f"the scoring logs hold input rows that do not have {width} values")
                flat = chain.from_iterable(chain.from_iterable(inputs))
                matrices.append(np.fromiter(flat, "float64", count=width * n_rows).reshape(-1, width))
                predictions.append(np.fromiter(chain.from_iterable(outputs), "float64"))
            except (ValueError, TypeError) as exc:
                raise MlopsError(f"the scoring logs hold malformed inputs or predictions ({exc})") from exc
            # No ``del`` of the chunk here: freeing it before the next one is read measured 40% slower at 1M
            # rows; rebinding frees it a chunk later, and at most one chunk outlives the collector's pause.
            versions.update(served_by)
            progress.advance(len(parts))
    # Column-major, so each feature's values are contiguous for sorting and binning.
    matrix = np.asfortranarray(np.concatenate(matrices)) if matrices else np.empty((0, width))
    preds = np.concatenate(predictions) if predictions else np.empty(0)
    if len(preds) != len(matrix):
        raise MlopsError(f"the scoring logs hold {len(matrix)} input rows but {len(preds)} predictions")
    return LoggedRows(matrix, preds, sum(versions.values()), {str(v): n for v, n in versions.items()})


def champion_reference(settings: Settings, champion_fingerprint: str | None) -> Reference:
    """The champion's training data: the snapshot, configured file or built-in data with its fingerprint.

    When none of them has it, the current training data stands in, and the note says so.
    """
    from diabetes_mlops import datasets

    found = datasets.find(settings, champion_fingerprint) if champion_fingerprint else None
    if found is not None:
        return Reference(found.frame, found.source, found.fingerprint, True)
    data = datasets.current(settings)
    current = data.fingerprint
    if champion_fingerprint:
        note = (
            f"the champion's training data (fingerprint {champion_fingerprint[:12]}) was not found; "
            f"compared with the current training data (fingerprint {current[:12]}) instead"
        )
    else:
        note = "no champion is registered; compared with the current training data"
    return Reference(data.frame, "current training data", current, False, note)


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
        lines = [self.message, *(f"note: {n}" for n in self.notes)]
        for c in self.columns:
            mark = "DRIFT" if c.drifted else "ok"
            lines.append(
                f"  {c.column:<10} psi={c.psi:.3f} ks={c.ks_statistic:.3f} p={c.ks_pvalue:.2g} "
                f"mean {c.reference_mean:.3g} -> {c.current_mean:.3g}  {mark}"
            )
        return "\n".join(lines)

    def markdown(self) -> str:
        """The summary as a markdown page, with the plots of drifting columns."""
        t = self.thresholds
        lines = [
            f"# Drift report {self.id}",
            "",
            f"**{self.status}**: {self.message}",
            "",
            f"- logged rows: {self.n_rows} in {self.n_requests} requests since {self.since or 'the first log'}",
            f"- model versions in the logs (requests): {self.model_versions or 'none'}",
            f"- reference: {self.reference_source} (fingerprint `{self.reference_fingerprint[:12]}`), "
            f"champion version {self.champion_version}",
            f"- thresholds: PSI >= {t.psi} and KS p-value < {t.ks_pvalue}; at least {t.min_rows} rows",
            *(f"- note: {n}" for n in self.notes),
        ]
        if self.columns:
            lines += ["", "| column | PSI | KS statistic | KS p-value | mean (reference -> logs) | drift |"]
            lines.append("| --- | ---: | ---: | ---: | --- | --- |")
            for c in self.columns:
                lines.append(
                    f"| {c.column} | {c.psi:.4f} | {c.ks_statistic:.4f} | {c.ks_pvalue:.3g} | "
                    f"{c.reference_mean:.4g} -> {c.current_mean:.4g} | {'**yes**' if c.drifted else 'no'} |"
                )
        plots = [c for c in self.columns if c.plot]
        if plots:
            lines += ["", "## Drifting columns", ""]
            lines += [f"![{c.column}]({c.plot})" for c in plots]
        return "\n".join(lines) + "\n"


def drift_report(
    settings: Settings,
    sink: LogSink,
    registry: Registry,
    *,
    since: datetime | None = None,
    out_dir: Path | None = None,
) -> DriftReport:
    """Compare the logs since ``since`` with the champion's training data; write the report files."""
    import numpy as np

    from diabetes_mlops.data import fingerprint

    thresholds = Thresholds.from_settings(settings)
    champion_version = registry.aliases(settings.model_name).get("champion")
    champion = registry.get(settings.model_name, champion_version) if champion_version else None
    progress.update("reading the scoring logs (requests)")
    logged = read_logged_rows(sink, since)
    progress.update("loading the reference data")
    reference = champion_reference(settings, champion.data_fingerprint if champion else None)
    report_id = new_id()  # the run directories' format: report and run ids sort together by time
    report = DriftReport(
        id=report_id,
        created=datetime.now(UTC).isoformat(timespec="microseconds"),
        since=since.isoformat(timespec="seconds") if since else None,
        status=STATUS_OK,
        message="",
        n_rows=len(logged.inputs),
        n_requests=logged.n_requests,
        thresholds=thresholds,
        reference_source=reference.source,
        reference_fingerprint=reference.fingerprint or fingerprint(reference.frame),
        reference_is_champions=reference.is_champions,
        champion_version=champion_version,
        model_versions=logged.model_versions,
        notes=[reference.note] if reference.note else [],
    )
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if report.n_rows < thresholds.min_rows:
        report.status = STATUS_TOO_FEW
        report.message = (
            f"too few logged rows for a sound test: {report.n_rows} since {report.since or 'the first log'}, "
            f"at least {thresholds.min_rows} are needed; no drift test was run"
        )
    else:
        ref = reference.frame.loc[:, list(FEATURES)].to_numpy(dtype="float64")
        for i, name in enumerate(FEATURES):
            samples[name] = (ref[:, i], logged.inputs[:, i])
        if champion_version is not None:
            model = registry.load(settings.model_name, champion_version)
            expected = model.predict(reference.frame.loc[:, list(FEATURES)])
            samples[PREDICTION] = (np.asarray(expected, dtype="float64"), logged.predictions)
            other = sorted(v for v in logged.model_versions if v != str(champion_version))
            if other:
                report.notes.append(
                    f"some logged predictions came from model versions {', '.join(other)}, not the champion "
                    f"{champion_version}; a prediction shift may be the model's, not the population's"
                )
        else:
            report.notes.append("no champion: the prediction distribution is not compared")
        progress.update(f"comparing {len(samples)} columns over {report.n_rows} rows")
        report.columns = [compare_column(name, ref_, cur, thresholds) for name, (ref_, cur) in samples.items()]
        drifted = report.drifted
        report.status = STATUS_DRIFT if drifted else STATUS_OK
        report.message = (
            f"drift in {', '.join(drifted)} over {report.n_rows} logged rows"
            if drifted
            else f"no drift beyond the thresholds over {report.n_rows} logged rows"
        )
    out = Path(out_dir) if out_dir is not None else settings.drift_dir / report_id
    progress.update("writing the report")
    write_report(report, out, samples)
    record_verdict(settings, report)
    return report


def write_report(report: DriftReport, out: Path, samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write ``drift.json``, ``drift.md`` and one PNG per drifting column into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report.out_dir = str(out)
    drifting = [c for c in report.columns if c.drifted]
    if drifting:
        _plot(out, drifting, samples)
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
    (out / SUMMARY_FILE).write_text(report.markdown())


def _plot(out: Path, columns: list[ColumnDrift], samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Histograms of the reference and the logs side by side, on the same bins and scales."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    for c in columns:
        ref, cur = samples[c.column]
        # Bins over both samples so a shifted tail shows; a 100k-row prefix is plenty to place 30 edges.
        edges = np.histogram_bin_edges(np.concatenate([ref, cur[:100_000]]), bins=30)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True, sharey=True)
        axes[0].hist(ref, bins=edges, density=True, color="tab:blue")
        axes[0].set_title(f"{c.column}: training data ({len(ref)} rows)", fontsize=9)
        axes[1].hist(cur, bins=edges, density=True, color="tab:orange")
        axes[1].set_title(f"{c.column}: scoring logs ({len(cur)} rows)", fontsize=9)
        fig.suptitle(f"PSI {c.psi:.3f}, KS {c.ks_statistic:.3f} (p={c.ks_pvalue:.2g})", fontsize=9)
        fig.tight_layout()
        c.plot = f"{c.column}.png"
        fig.savefig(out / c.plot, dpi=80)
        plt.close(fig)


def record_verdict(settings: Settings, report: DriftReport) -> None:
    """Keep the last report's verdict in ``<home>/drift/last.json``, where ``retrain --if-due`` reads it."""
    from diabetes_mlops.files import write_atomic

    verdict = {
        "id": report.id,
        "created": report.created,
        "status": report.status,
        "drifted": report.drifted,
        "report": str(Path(report.out_dir or "") / REPORT_FILE),
    }
    write_atomic(settings.drift_dir / LAST_FILE, json.dumps(verdict, indent=2).encode())
