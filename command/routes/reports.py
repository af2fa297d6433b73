"""After-action reports (复盘报告): JSON, one self-contained HTML page, and the event log
as CSV — for an exercise or for one incident (live or exercise).

Operators, commanders, planners and admins read; field users get 403. Planners read
exercises and exercise incidents only: a live incident's report is 403 for them.
Refusals are audited (reads themselves change nothing and are not).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from command.deps import State, forbid, requires
from command.domain.policy import Action, allowed
from command.security import Principal
from command.services import report_render as render
from command.services import reports as service
from command.services.incident_store import NotFound
from command.services.reports import LoadedReport

router = APIRouter(tags=["reports"])

Reader = Annotated[Principal, Depends(requires(Action.REPORT_READ))]
ExerciseId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
IncidentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
LangQuery = Annotated[Literal["zh", "en"], Query(description="zh (default, 简体中文) or en")]
Download = Annotated[bool, Query(description="send as an attachment (Content-Disposition) to save as a file")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "field users; planners asking for a live incident"},
    404: {"description": "no such exercise or incident"},
}
HTML_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report as one self-contained HTML page (plotly.js inline, no network needed)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
CSV_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the event log, one row per event (UTF-8 with BOM): " + ", ".join(render.CSV_COLUMNS),
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


async def _exercise(state: State, exercise_id: str) -> LoadedReport:
    try:
        return await service.exercise_report(state, exercise_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


async def _incident(state: State, who: Principal, incident_id: str) -> LoadedReport:
    try:
        scope = await service.incident_scope(state, incident_id)
        if not allowed(who.role, Action.REPORT_READ, drill=scope.is_drill):
            raise await forbid(
                state,
                who,
                "report.read",
                f"planners read exercise reports only; {incident_id} is a live incident",
                object_type="incident",
                object_id=incident_id,
            )
        return await service.incident_report(state, incident_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


async def _html(
    state: State, loaded: LoadedReport, lang: Literal["zh", "en"], download: bool
) -> HTMLResponse:
    # Drawing the figures and a ~5 MB page takes a moment: off the event loop.
    page = await run_in_threadpool(render.to_html, loaded, lang, timezone=state.settings.command.timezone)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{render.filename(loaded, "html")}"'
    return HTMLResponse(page, headers=headers)


def _csv(loaded: LoadedReport, lang: Literal["zh", "en"]) -> Response:
    name = render.filename(loaded, "csv").replace(".csv", "-events.csv")
    return Response(
        render.to_csv(loaded, lang),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/exercises/{exercise_id}/report", responses=ERRORS)
async def exercise_report(
    exercise_id: ExerciseId, state: State, who: Reader, lang: LangQuery = "zh"
) -> dict[str, Any]:
    """复盘报告 of an exercise: scope, KPIs (call processing against NFPA 1225's 60 s
    for 90 %, time to dispatch, time to on scene, checklist completion, shortfalls),
    incidents with their timelines, team tracks and the event log."""
    return render.to_json(await _exercise(state, exercise_id), lang)


@router.get(
    "/exercises/{exercise_id}/report.html",
    response_class=HTMLResponse,
    responses={**HTML_OK, **ERRORS},
)
async def exercise_report_html(
    exercise_id: ExerciseId, state: State, who: Reader, lang: LangQuery = "zh", download: Download = False
) -> HTMLResponse:
    """The exercise's report as one HTML page that works without a network."""
    return await _html(state, await _exercise(state, exercise_id), lang, download)


@router.get(
    "/exercises/{exercise_id}/report.csv",
    response_class=Response,
    responses={**CSV_OK, **ERRORS},
)
async def exercise_report_csv(
    exercise_id: ExerciseId, state: State, who: Reader, lang: LangQuery = "zh"
) -> Response:
    """The exercise's event log as CSV (a download)."""
    return _csv(await _exercise(state, exercise_id), lang)


@router.get("/incidents/{incident_id}/report", responses=ERRORS)
async def incident_report(
    incident_id: IncidentId, state: State, who: Reader, lang: LangQuery = "zh"
) -> dict[str, Any]:
    """复盘报告 of one incident (live or exercise), same shape as an exercise's."""
    return render.to_json(await _incident(state, who, incident_id), lang)


@router.get(
    "/incidents/{incident_id}/report.html",
    response_class=HTMLResponse,
    responses={**HTML_OK, **ERRORS},
)
async def incident_report_html(
    incident_id: IncidentId, state: State, who: Reader, lang: LangQuery = "zh", download: Download = False
) -> HTMLResponse:
    """The incident's report as one HTML page that works without a network."""
    return await _html(state, await _incident(state, who, incident_id), lang, download)


@router.get(
    "/incidents/{incident_id}/report.csv",
    response_class=Response,
    responses={**CSV_OK, **ERRORS},
)
async def incident_report_csv(
    incident_id: IncidentId, state: State, who: Reader, lang: LangQuery = "zh"
) -> Response:
    """The incident's event log as CSV (a download)."""
    return _csv(await _incident(state, who, incident_id), lang)
