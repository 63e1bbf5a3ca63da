"""The last drift report's verdict, kept in ``<home>/drift/last.json`` for ``retrain --if-due``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from pathlib import Path

    from diabetes_mlops.config import Settings

LAST_FILE = "last.json"
STATUS_OK = "ok"
STATUS_DRIFT = "drift"
STATUS_TOO_FEW = "insufficient_data"


@dataclass(frozen=True)
class Verdict:
    """A drift report's outcome: its id and time, ``ok``/``drift``/``insufficient_data``, the drifted columns."""

    id: str
    created: str
    status: str
    drifted: list[str]
    report: str

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    @staticmethod
    def path(settings: Settings) -> Path:
        return settings.drift_dir / LAST_FILE

    def save(self, settings: Settings) -> None:
        """Replace the last verdict; a reader sees the old one or this one, never a part."""
        from diabetes_mlops.files import write_atomic

        write_atomic(self.path(settings), json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def last(cls, settings: Settings) -> Verdict | None:
        """The last report's verdict, or None when no report was made yet."""
        path = cls.path(settings)
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise MlopsError(f"{path}: not a drift verdict ({exc})") from exc
