"""``python -m tests.simazure --state-dir D``: run the simulated Azure until interrupted.

It prints one JSON line: the front's URL, the ARM metadata URL, and the environment a build agent needs
(``env``); ``--env-file F`` also writes that environment as ``KEY=value`` lines for a shell to source.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from tests.simazure.service import SimAzure


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.simazure")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--env-file", type=Path)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SimAzure(args.state_dir) as sim:
        env = sim.client_env()
        if args.env_file:
            args.env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        print(json.dumps({"url": sim.base_url, "metadata_url": sim.metadata_url, "env": env}), flush=True)
        stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
