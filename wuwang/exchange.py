"""The exchange form of upward reporting (信息报送): what the command centre sends to the
upper level's platform and what comes back, as models. Modelled on GB/T 35965.2 (应急信息
交互协议 第2部分：事件信息): event type codes of GB/T 35561, area codes of GB/T 2260,
times with their offset (ISO 8601), positions WGS-84.

The models are the truth of the JSON Schemas shipped in ``docs/schemas/exchange/``
(``python -m wuwang.schemas_export`` writes them); the command service builds the form,
the simulated upper level (``python -m simulators upper``) validates against it. Field
table: docs/duty-and-reporting.md. Field names are the form's (lower camel case, like
the standard's XML elements), not Python's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from wuwang.nul import refuse_nul_within

FORM_VERSION = "1.0"
#: POST <upper platform>/reports: one form; the answer is a :class:`Receipt` (200), or 202
#: ``{"reportId", "status": "accepted"}`` when the upper level signs its receipt later.
REPORTS_PATH = "/reports"
#: GET <upper platform>/receipts?since=<ISO time>: the receipts signed since then (the
#: later ones among them), fetched by the command side; each is recorded once by its id.
RECEIPTS_PATH = "/receipts"
#: GET <upper platform>/instructions?since=<ISO time>: the instructions issued since then.
INSTRUCTIONS_PATH = "/instructions"

EventCode = Annotated[
    str, Field(pattern=r"^[1-4][0-9][A-Z][0-9]{2}$", description="GB/T 35561 event type code (e.g. 21B00)")
]
AreaCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="GB/T 2260 administrative area code")]
ReportId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}-R[0-9]{2,}$", description="<event id>-R<nn>: the idempotency key"),
]
Text = Annotated[str, Field(max_length=4000)]
Count = Annotated[int, Field(ge=0)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        refuse_nul_within(value)  # a peer's text is stored: PostgreSQL cannot hold NUL
        return value


class Unit(_Closed):
    """报送单位 / 接收单位."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    areaCode: AreaCode


class Casualties(_Closed):
    """伤亡和损失: null = not known yet (zero is a figure)."""

    deaths: Count | None = Field(description="死亡人数")
    missing: Count | None = Field(description="失踪人数")
    injured: Count | None = Field(description="受伤人数")
    trapped: Count | None = Field(description="被困人数")
    evacuated: Count | None = Field(description="紧急转移安置人数")
    directLoss: Annotated[float, Field(ge=0)] | None = Field(description="直接经济损失（万元）")


class EventInfo(_Closed):
    """事件信息."""

    eventId: Annotated[str, Field(min_length=1, max_length=64, description="事件编号")]
    eventName: Annotated[str, Field(min_length=1, max_length=200, description="事件名称")]
    eventTypeCode: EventCode
    eventTypeName: Annotated[str, Field(min_length=1, max_length=40, description="事件类型")]
    severity: Literal["1", "2", "3", "4"] = Field(description="事件级别: 1 特别重大 … 4 一般")
    severityName: Literal["特别重大", "重大", "较大", "一般"]
    occurTime: AwareDatetime | None = Field(description="发生时间")
    receiveTime: AwareDatetime = Field(description="首次接报时间")
    areaCode: AreaCode
    address: Annotated[str, Field(min_length=1, max_length=400, description="发生地点")]
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = Field(description="经度 (WGS-84)")
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = Field(description="纬度 (WGS-84)")
    casualties: Casualties
    cause: Text = Field(description="事件原因（初步）")
    measures: Text = Field(description="已采取的处置措施")
    teams: list[Annotated[str, Field(max_length=200)]] = Field(description="投入的救援队伍")
    supplies: list[Annotated[str, Field(max_length=200)]] = Field(description="投入的应急物资")
    trend: Text = Field(description="发展趋势")
    aftermath: Text = Field(description="善后处置和结果（终报）")


class Change(_Closed):
    """变化情况: one element that differs from the previous report."""

    element: Annotated[str, Field(min_length=1, max_length=60)]
    before: Any
    after: Any


class EventReport(_Closed):
    """One report to the upper level (首报, 续报 or 终报)."""

    model_config = ConfigDict(extra="forbid", title="event-report")

    formVersion: Literal["1.0"]
    reportId: ReportId
    reportKind: Literal["first", "follow_up", "final"]
    reportKindName: Literal["首报", "续报", "终报"]
    channel: Literal["phone", "written"] = Field(description="a phone report's written record, or written")
    sequence: Annotated[int, Field(ge=1, description="第 n 报 of this event")]
    previousReportId: str | None = Field(description="the last report sent before this one")
    status: Literal["actual", "exercise"] = Field(description="exercise: a drill's (演练), never acted on")
    sender: Unit
    receiver: Unit
    reporter: Annotated[str, Field(min_length=1, max_length=64, description="填报人")]
    approver: Annotated[str, Field(min_length=1, max_length=64, description="签发人")]
    approvedTime: AwareDatetime
    sendTime: AwareDatetime
    event: EventInfo
    changes: list[Change] = Field(description="what changed since the previous report (续报, 终报)")


class Receipt(_Closed):
    """回执: the upper level has the report (or refuses the form, with the reason)."""

    model_config = ConfigDict(extra="forbid", title="receipt")

    receiptId: Annotated[str, Field(min_length=1, max_length=80)]
    reportId: Annotated[str, Field(min_length=1, max_length=80)]
    status: Literal["received", "rejected"]
    receivedTime: AwareDatetime
    unit: Unit
    signedBy: Annotated[str, Field(min_length=1, max_length=64, description="签收人")]
    reason: str | None = Field(default=None, description="why a form was rejected")


class Instruction(_Closed):
    """批示: the upper level's instruction on a reported event."""

    model_config = ConfigDict(extra="forbid", title="instruction")

    instructionId: Annotated[str, Field(min_length=1, max_length=80)]
    reportId: str | None
    eventId: Annotated[str, Field(min_length=1, max_length=64)]
    status: Literal["actual", "exercise"]
    fromUnit: Unit
    issuedBy: Annotated[str, Field(max_length=64)]
    text: Annotated[str, Field(min_length=1, max_length=4000)]
    issuedTime: AwareDatetime


#: Schema name → model, exported to docs/schemas/exchange/<name>.schema.json.
EXCHANGE: dict[str, type[BaseModel]] = {
    "event-report": EventReport,
    "receipt": Receipt,
    "instruction": Instruction,
}

KIND_NAMES: dict[str, Literal["首报", "续报", "终报"]] = {
    "first": "首报",
    "follow_up": "续报",
    "final": "终报",
}
SEVERITY_NAMES: dict[str, Literal["特别重大", "重大", "较大", "一般"]] = {
    "1": "特别重大",
    "2": "重大",
    "3": "较大",
    "4": "一般",
}


def json_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, model in EXCHANGE.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"wuwang/exchange/{FORM_VERSION}/{name}.schema.json"
        out[name] = schema
    return out


Peer = TypeVar("Peer", bound=BaseModel)


def each_valid(model: type[Peer], document: Any) -> tuple[list[Peer], list[str]]:
    """The items of a list the upper level sent that read as ``model``, and why each of
    the others did not: one bad item (a NUL, a missing field) never holds back the rest."""
    if not isinstance(document, list):
        return [], [f"not a list of {model.__name__}: {type(document).__name__}"]
    good: list[Peer] = []
    bad: list[str] = []
    for n, item in enumerate(document):
        try:
            good.append(model.model_validate(item))
        except ValidationError as exc:
            bad.append(f"item {n}: {exc.errors()[0]['msg']}")
    return good, bad
