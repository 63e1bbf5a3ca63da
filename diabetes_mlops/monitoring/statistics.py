"""Drift statistics: the population stability index, the Kolmogorov-Smirnov test, and one column compared.

A column drifts when both measures agree: PSI (over ten quantile bins of the reference) at or above the
threshold says the distribution moved far, and a KS p-value below the threshold says the move is more than
sampling noise. Requiring both keeps a small batch's noise (large PSI by chance) and a huge batch's trivial
shifts (tiny p-value for a negligible move) from raising alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from diabetes_mlops.config import DEFAULTS

if TYPE_CHECKING:
    import numpy as np

    from diabetes_mlops.config import Settings

PSI_BINS = 10
# Floor on a bin's share so an empty bin on one side gives a large, finite PSI term instead of infinity.
PSI_EPSILON = 1e-4


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

    psi: float = DEFAULTS.drift_psi_threshold
    ks_pvalue: float = DEFAULTS.drift_ks_pvalue
    min_rows: int = DEFAULTS.drift_min_rows

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
