"""The container's HEALTHCHECK: exit 0 when the local service answers ``/health``, 1 when it does not."""

import os
import sys
import urllib.request


def main() -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
