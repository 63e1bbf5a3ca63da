"""``python -m diabetes_mlops``: the same as the ``diabetes-mlops`` command."""

from diabetes_mlops.cli import main

main()
