"""``python -m command``: the command service on ``COMMAND_HOST:COMMAND_PORT``
(127.0.0.1:8000; a deployment opens it to the console's hosts with COMMAND_HOST).

``python -m command cap import FILE…`` stores CAP 1.2 files of other agencies as inbound
warnings (command/cap_cli.py) and exits.

``python -m command --help`` lists the settings it reads (wuwang.cli). uvicorn serves
the app in a thread of its own and logs in the service's one format (wuwang.service);
SIGTERM/SIGINT: finish the requests in flight, stop, exit 0.
"""

from __future__ import annotations

import argparse

from wuwang.cli import parser_for
from wuwang.service import Service, run, serve_asgi


def main(svc: Service) -> int:
    from command.app import create_app  # after --help: the app is not built for it

    settings = svc.settings
    app = create_app(settings)
    svc.log.info("command service on http://%s:%d/", settings.command.host, settings.command.port)
    return serve_asgi(
        svc,
        app,
        settings.command.host,
        settings.command.port,
        # What a console sends on /ws is its token and token renewals (< 1 KiB); uvicorn's
        # default would let an unauthenticated client push 16 MiB frames.
        ws_max_size=64 * 1024,
    )


def build_parser() -> argparse.ArgumentParser:
    """No command: the service; ``cap import FILE…``: an import. --help lists the settings."""
    from command import cap_cli

    parser = parser_for("command")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    cap_cli.add_subcommand(sub)
    return parser


if __name__ == "__main__":
    ns = build_parser().parse_args()
    if ns.cmd == "cap":
        from command import cap_cli

        raise SystemExit(cap_cli.main(ns))
    raise SystemExit(run("command", main))
