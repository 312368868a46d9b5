"""`python -m agent_service`: the API, one uvicorn process (uvloop + httptools) on PORT.

SIGTERM starts draining: /ready answers 503 at once, new sessions are refused and every
response says `Connection: close` while requests in flight finish; after SHUTDOWN_DRAIN_SECONDS
uvicorn stops accepting and waits up to SHUTDOWN_TIMEOUT_SECONDS for the rest, then the
lifespan closes the pools. Connection timeouts: see server.py.
"""

from __future__ import annotations

import argparse
import sys

from .app import create_app
from .config import ConfigError, load_settings
from .core.logging import configure_logging
from .server import build_server


def main(argv: list[str] | tuple[str, ...] = ()) -> int:
    argparse.ArgumentParser(
        prog="python -m agent_service",
        description="The agent service's API on $PORT, configured by environment variables "
        "(README: 'The agent service', 'Environment').",
    ).parse_args(list(argv))
    try:
        settings = load_settings()
        app = create_app(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    server = build_server(app, settings, app.state.lifecycle)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
