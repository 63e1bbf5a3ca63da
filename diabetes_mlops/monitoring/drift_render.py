"""The drift report for people: a text summary, a markdown page, histograms of drifting columns, the files."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from diabetes_mlops.monitoring.drift import DriftReport
    from diabetes_mlops.monitoring.statistics import ColumnDrift

REPORT_FILE = "drift.json"
SUMMARY_FILE = "drift.md"


def summary(report: DriftReport) -> str:
    """Human text: the verdict, then one line per column."""
    lines = [report.message, *(f"note: {n}" for n in report.notes)]
    for c in report.columns:
        mark = "DRIFT" if c.drifted else "ok"
        lines.append(
            f"  {c.column:<10} psi={c.psi:.3f} ks={c.ks_statistic:.3f} p={c.ks_pvalue:.2g} "
            f"mean {c.reference_mean:.3g} -> {c.current_mean:.3g}  {mark}"
        )
    return "\n".join(lines)


def markdown(report: DriftReport) -> str:
    """The summary as a markdown page, with the plots of drifting columns."""
    t = report.thresholds
    lines = [
        f"# Drift report {report.id}",
        "",
        f"**{report.status}**: {report.message}",
        "",
        f"- logged rows: {report.n_rows} in {report.n_requests} requests since {report.since or 'the first log'}",
        f"- model versions in the logs (requests): {report.model_versions or 'none'}",
        f"- reference: {report.reference_source} (fingerprint `{report.reference_fingerprint[:12]}`), "
        f"champion version {report.champion_version}",
        f"- thresholds: PSI >= {t.psi} and KS p-value < {t.ks_pvalue}; at least {t.min_rows} rows",
        *(f"- note: {n}" for n in report.notes),
    ]
    if report.columns:
        lines += ["", "| column | PSI | KS statistic | KS p-value | mean (reference -> logs) | drift |"]
        lines.append("| --- | ---: | ---: | ---: | --- | --- |")
        for c in report.columns:
            lines.append(
                f"| {c.column} | {c.psi:.4f} | {c.ks_statistic:.4f} | {c.ks_pvalue:.3g} | "
                f"{c.reference_mean:.4g} -> {c.current_mean:.4g} | {'**yes**' if c.drifted else 'no'} |"
            )
    plots = [c for c in report.columns if c.plot]
    if plots:
        lines += ["", "## Drifting columns", ""]
        lines += [f"![{c.column}]({c.plot})" for c in plots]
    return "\n".join(lines) + "\n"


def write_report(report: DriftReport, out: Path, samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write ``drift.json``, ``drift.md`` and one PNG per drifting column into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report.out_dir = str(out)
    drifting = [c for c in report.columns if c.drifted]
    if drifting:
        plot_columns(out, drifting, samples)
    (out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
    (out / SUMMARY_FILE).write_text(markdown(report))


def plot_columns(out: Path, columns: list[ColumnDrift], samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
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
