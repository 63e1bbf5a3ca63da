"""The data a drift report compares the logs with: the champion's training data, found by its fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from diabetes_mlops.config import Settings


@dataclass
class Reference:
    """The data the logs are compared with: what it is, its fingerprint, and whether it is the champion's."""

    frame: pd.DataFrame
    source: str
    fingerprint: str
    is_champions: bool
    note: str | None = None


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
