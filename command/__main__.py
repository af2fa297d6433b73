"""``python -m command``: the command service on ``COMMAND_HOST:COMMAND_PORT``
(127.0.0.1:8000; a deployment opens it to the console's hosts with COMMAND_HOST)."""

from __future__ import annotations

import uvicorn

from command.app import create_app
from wuwang.settings import get_settings


def main() -> None:
    settings = get_settings()
    logging_level = settings.log_level.lower()
    uvicorn.run(
        create_app(settings),
        host=settings.command_host,
        port=settings.command_port,
        log_level=logging_level,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
