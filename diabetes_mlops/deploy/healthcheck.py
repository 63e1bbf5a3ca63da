"""The container's HEALTHCHECK: exit 0 when the local service answers ``/health``, 1 when it does not."""

import os
import sys

from diabetes_mlops.deploy.smoke import healthy

if __name__ == "__main__":
    sys.exit(0 if healthy(f"http://127.0.0.1:{os.environ.get('PORT', '8000')}") else 1)
