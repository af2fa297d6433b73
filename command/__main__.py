"""``python -m command``: the command service on settings.command_port (8000)."""

from __future__ import annotations

import uvicorn

from command.app import create_app
from wuwang.settings import get_settings


def main() -> None:
    settings = get_settings()
    logging_level = settings.log_level.lower()
    uvicorn.run(
        create_app(settings),
        host="0.0.0.0",  # noqa: S104 - a service: reachable from the console host
        port=settings.command_port,
        log_level=logging_level,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
