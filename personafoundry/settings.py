"""Process-wide settings applied at every entry point (CLI, flows, tests).

Offline, Prefect's telemetry fails noisily, so analytics are off by default; Prefect
ships our log records to its UI only for loggers it is told about, and may leave our
logger at the root level (WARNING), so the level is set here too. Values already in the
environment win, so users keep control.
"""

from __future__ import annotations

import logging
import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "personafoundry",
    "PREFECT_UI_ENABLED": "false",
    # The temporary server takes 20-30 s to start on a busy 2-core machine; the default 20 s
    # wait fails runs there.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def configure() -> None:
    """Set env defaults before Prefect is imported, and our logger's level."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("personafoundry").setLevel(logging.INFO)
