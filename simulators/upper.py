"""``python -m simulators upper [--host H] [--port P] [--no-instructions] [--receipt-delay S]``: a simulated
upper-level platform (上级应急管理部门的信息报送系统) for upward reporting.

It speaks the exchange form of wuwang/exchange.py (docs/duty-and-reporting.md):

* ``POST /reports`` — one report; validated against the form. A valid one is kept (keyed
  by its ``reportId``: the same report posted again gets the same receipt, nothing is
  doubled) and answered 200 with a receipt (回执, ``status: received``); an invalid one
  is answered 422 with a receipt that says ``rejected`` and why. With ``--receipt-delay S``
  a valid report is answered 202 (taken) and its receipt is signed S seconds later, as a
  duty office that reads before it signs.
* ``GET /receipts?since=<ISO time>`` — the receipts signed after that time (the later
  ones too); the command service fetches them and records each once.
* ``GET /instructions?since=<ISO time>`` — the instructions (批示) issued after that time.
  On each first report (首报) received the platform issues one, as a provincial duty
  office does ("收悉，…及时续报"), unless ``--no-instructions``.
* ``POST /instructions`` ``{"reportId": …, "text": …}`` — issue one by hand.
* ``GET /reports`` — what was received, for a person looking at the demo.

The command service posts reports and fetches instructions (COMMAND_UPPER_URL); nothing
here reaches the command service.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from wuwang import exchange

log = logging.getLogger("simulators.upper")

COMMAND = "upper"
DEFAULT_PORT = 8091
#: The provincial duty office the demo reports to (Hubei's, GB/T 2260 420000).
DEFAULT_UNIT = exchange.Unit(name="湖北省应急管理厅总值班室", areaCode="420000")
FIRST_REPORT_INSTRUCTION = "收悉。请全力组织救援，妥善处置，防止次生灾害，及时续报。"
MAX_BODY = 1_000_000


class UpperPlatform:
    """What the platform holds: the reports received, their receipts, the instructions."""

    def __init__(
        self,
        unit: exchange.Unit = DEFAULT_UNIT,
        *,
        duty_officer: str = "省厅值班员",
        instruct_on_first: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        receipt_delay_s: float | None = None,
    ) -> None:
        self.unit = unit
        self.duty_officer = duty_officer
        self.instruct_on_first = instruct_on_first
        self.clock = clock
        self.reports: dict[str, exchange.EventReport] = {}
        self.receipts: dict[str, exchange.Receipt] = {}
        self.receipt_delay = None if receipt_delay_s is None else timedelta(seconds=receipt_delay_s)
        #: reports taken whose receipt is not signed yet: report id → when it is due
        self.unsigned: dict[str, datetime] = {}
        self.instructions: list[exchange.Instruction] = []
        self.rejected = 0
        self._lock = threading.Lock()

    def receive(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """A posted report: (HTTP status, the receipt as JSON)."""
        try:
            report = exchange.EventReport.model_validate_json(body)
        except ValidationError as exc:
            self.rejected += 1
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10])
            return 422, self._rejected(body, problems).model_dump(mode="json")
        with self._lock:
            self._sign_due()
            known = self.receipts.get(report.reportId)
            if known is not None:  # the same report again (a retry): the same receipt
                return 200, known.model_dump(mode="json")
            if report.reportId in self.unsigned:  # again before its receipt is signed
                return 202, {"reportId": report.reportId, "status": "accepted"}
            at = self.clock()
            self.reports[report.reportId] = report
            if self.instruct_on_first and report.reportKind == "first":
                self._instruct(
                    report.event.eventId, report.reportId, report.status, FIRST_REPORT_INSTRUCTION, at
                )
            if self.receipt_delay is not None:
                self.unsigned[report.reportId] = at + self.receipt_delay
                log.info("took %s (%s): receipt due %s", report.reportId, report.reportKindName,
                         self.unsigned[report.reportId])  # fmt: skip
                return 202, {"reportId": report.reportId, "status": "accepted"}
            receipt = self._sign(report.reportId, at)
        log.info("received %s (%s, %s): receipt %s", report.reportId, report.reportKindName, report.status,
                 receipt.receiptId)  # fmt: skip
        return 200, receipt.model_dump(mode="json")

    def _sign(self, report_id: str, at: datetime) -> exchange.Receipt:
        receipt = exchange.Receipt(
            receiptId=f"RC-{report_id}",
            reportId=report_id,
            status="received",
            receivedTime=at,
            unit=self.unit,
            signedBy=self.duty_officer,
        )
        self.receipts[report_id] = receipt
        self.unsigned.pop(report_id, None)
        return receipt

    def _sign_due(self) -> None:
        now = self.clock()
        for report_id, due in sorted(self.unsigned.items(), key=lambda item: item[1]):
            if due <= now:
                self._sign(report_id, due)

    def sign_all(self) -> list[exchange.Receipt]:
        """Sign every receipt still owed now (the duty office catches up)."""
        with self._lock:
            at = self.clock()
            return [self._sign(report_id, at) for report_id in list(self.unsigned)]

    def receipts_since(self, after: datetime | None) -> list[dict[str, Any]]:
        with self._lock:
            self._sign_due()
            chosen = [r for r in self.receipts.values() if after is None or r.receivedTime > after]
        return [r.model_dump(mode="json") for r in chosen]

    def _rejected(self, body: bytes, why: str) -> exchange.Receipt:
        try:
            raw = json.loads(body)
            report_id = str(raw.get("reportId") or "unknown")[:80] if isinstance(raw, dict) else "unknown"
        except ValueError:
            report_id = "unknown"
        return exchange.Receipt(
            receiptId=f"RJ-{report_id}-{self.rejected}",
            reportId=report_id or "unknown",
            status="rejected",
            receivedTime=self.clock(),
            unit=self.unit,
            signedBy=self.duty_officer,
            reason=why[:2000],
        )

    def _instruct(self, event_id: str, report_id: str | None, status: str, text: str, at: datetime) -> None:
        self.instructions.append(
            exchange.Instruction(
                instructionId=f"PS-{len(self.instructions) + 1:04d}-{event_id}"[:80],
                reportId=report_id,
                eventId=event_id,
                status="exercise" if status == "exercise" else "actual",
                fromUnit=self.unit,
                issuedBy="省厅带班领导",
                text=text,
                issuedTime=at,
            )
        )

    def instruct(self, report_id: str, text: str) -> exchange.Instruction | None:
        """批示 by hand on a report received; None if there is no such report."""
        with self._lock:
            report = self.reports.get(report_id)
            if report is None:
                return None
            self._instruct(report.event.eventId, report_id, report.status, text, self.clock())
            return self.instructions[-1]

    def since(self, after: datetime | None) -> list[dict[str, Any]]:
        with self._lock:
            chosen = [i for i in self.instructions if after is None or i.issuedTime > after]
        return [i.model_dump(mode="json") for i in chosen]


def handler_for(platform: UpperPlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "wuwang-upper/1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"detail": "too large"})
                return None
            return self.rfile.read(length)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in (exchange.INSTRUCTIONS_PATH, exchange.RECEIPTS_PATH):
                since = parse_qs(url.query).get("since", [None])[0]
                try:
                    after = datetime.fromisoformat(since) if since else None
                except ValueError:
                    self._answer(422, {"detail": "since: an ISO 8601 time"})
                    return
                if after is not None and after.tzinfo is None:
                    self._answer(422, {"detail": "since: a time with its offset"})
                    return
                listed = platform.since if url.path == exchange.INSTRUCTIONS_PATH else platform.receipts_since
                self._answer(200, listed(after))
            elif url.path == exchange.REPORTS_PATH:
                self._answer(200, [r.model_dump(mode="json") for r in list(platform.reports.values())])
            else:
                self._answer(404, {"detail": "not found"})

        def do_POST(self) -> None:
            body = self._body()
            if body is None:
                return
            path = urlsplit(self.path).path
            if path == exchange.REPORTS_PATH:
                self._answer(*platform.receive(body))
            elif path == exchange.INSTRUCTIONS_PATH:
                try:
                    raw = json.loads(body)
                    issued = platform.instruct(str(raw["reportId"]), str(raw["text"])[:4000])
                except (ValueError, KeyError, TypeError):
                    self._answer(422, {"detail": 'send {"reportId": …, "text": …}'})
                    return
                if issued is None:
                    self._answer(404, {"detail": "no such report"})
                else:
                    self._answer(201, issued.model_dump(mode="json"))
            else:
                self._answer(404, {"detail": "not found"})

    return Handler


def serve(platform: UpperPlatform, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """A server bound to (host, port) — port 0: any free one (``server.server_port``);
    the caller runs ``serve_forever`` and ``shutdown``."""
    server = ThreadingHTTPServer((host, port), handler_for(platform))
    server.daemon_threads = True
    return server


def add_subcommand(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(COMMAND, help="a simulated upper-level platform that receives reports (信息报送)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"listen port (default {DEFAULT_PORT})")
    p.add_argument("--no-instructions", action="store_true", help="issue no 批示 on first reports")
    p.add_argument(
        "--receipt-delay", type=float, default=None, metavar="S",
        help="answer reports 202 and sign their receipts (回执) S seconds later (default: at once)",
    )  # fmt: skip


def main(ns: argparse.Namespace) -> int:
    platform = UpperPlatform(instruct_on_first=not ns.no_instructions, receipt_delay_s=ns.receipt_delay)
    server = serve(platform, ns.host, ns.port)
    log.info("upper-level platform %s listening on %s:%d", platform.unit.name, ns.host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
