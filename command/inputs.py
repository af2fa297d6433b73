"""What a request may carry: one home for the rules on text and scalars.

- No text may hold NUL (U+0000): PostgreSQL cannot store it, so it used to surface as a
  500 from deep inside a query (and made the audit write of a refusal fail too).
  ``ApiIn`` refuses it in every field of every request body, nested or not; ``Text``
  does the same for query parameters.
- Request bodies are strict: ``true`` is not a level and not a longitude, ``"1"`` is
  not a number. JSON has one number type, so an integer is still accepted where the
  API says number. JSON has no enums or datetimes either: those fields say
  ``Strict(False)`` (``FROM_TEXT``) and are parsed from their strings.
- A NUL (or other data PostgreSQL refuses) that slips past both still ends as 422,
  not 500: ``install`` registers the last-resort handler.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator

from wuwang.nul import NUL_REFUSED as NUL_REFUSED  # the refusal's words, for the tests
from wuwang.nul import refuse_nul, refuse_nul_within

log = logging.getLogger(__name__)

#: For enum and datetime fields of a strict body: JSON carries them as strings.
FROM_TEXT = Strict(False)


#: Text in a query parameter (bodies are covered by ``ApiIn``).
Text = Annotated[str, AfterValidator(refuse_nul)]

DAY_OUT_OF_RANGE = "a day between 0001-01-02 and 9999-12-30"


def _within_calendar(day: date) -> date:
    # A day's log spans into the next day (and a shifted day into the one before):
    # the calendar's first and last days would overflow Python's dates (a 500).
    if not date.min < day < date.max:
        raise ValueError(DAY_OUT_OF_RANGE)
    return day


#: A calendar day in a query parameter, with a day on each side of it.
Day = Annotated[date, AfterValidator(_within_calendar)]


class ApiIn(BaseModel):
    """The base of every request body: strict scalars, no NUL in any text."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        refuse_nul_within(value)
        return value


class ClosedApiIn(ApiIn):
    """A request body that names every field it takes: an unknown field is a 422."""

    model_config = ConfigDict(extra="forbid")


#: An exercise id in a body or a query (wuwang.exercises.EXERCISE_ID_RE).
ExerciseIdText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]

#: A place in a body, WGS-84 degrees (what the field pages and registries send).
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]

DATA_REFUSED = "the request holds a value the database cannot store (e.g. a NUL, U+0000, in a text)"


async def _data_refused(request: Request, exc: Exception) -> JSONResponse:
    # The database judged the caller's data (SQLSTATE class 22, or psycopg refusing a
    # NUL before sending): that is bad input, so 422 with the reason, never a 500.
    log.warning("%s %s: data refused by the database: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": [{"loc": ["request"], "msg": DATA_REFUSED, "type": "data_refused"}]},
    )


def install(app: FastAPI) -> None:
    """The last-resort guard: psycopg's DataError answered as 422."""
    app.add_exception_handler(psycopg.DataError, _data_refused)
