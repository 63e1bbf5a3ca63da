"""The ``diabetes-mlops`` command. Exit codes: 0 ok, 1 failure, 2 usage, 3 champion kept, 4 drift.

Each module below adds its verbs to the one ``main`` group; importing them here registers them.
"""

from diabetes_mlops.cli import azure, batch, models, monitoring, release, retrain  # noqa: F401
from diabetes_mlops.cli.base import main

__all__ = ["main"]
