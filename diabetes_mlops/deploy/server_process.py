"""The server process a local deployment's supervisor starts: one registered version on the supervisor's socket.

Private to the supervisor (``python -m diabetes_mlops.deploy.server_process``), so the public ``serve`` verb
keeps only what a user sets. It inherits the listening socket as a file descriptor and writes the ready file
once it accepts connections; errors go to the deployment's log, whose path the supervisor reports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diabetes_mlops.errors import MlopsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--model", required=True, help="NAME:VERSION in the home's registry")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--ready-file", type=Path, required=True, help="written once the server accepts")
    args = parser.parse_args(argv)

    from diabetes_mlops.config import load_settings
    from diabetes_mlops.registry import open_registry, parse_model_ref
    from diabetes_mlops.serving.server import serve

    try:
        settings = load_settings(home=args.home)
        registry = open_registry(settings)
        name, ref = parse_model_ref(args.model, settings.model_name)
        entry = registry.get(name, ref)
        # One process per generation on the shared socket: a replace starts the next one beside it.
        serve(settings, registry.version_dir(name, entry.version), fd=args.fd, ready_file=args.ready_file)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
