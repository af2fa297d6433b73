"""What the command service sends to the field beyond dispatch orders, as models: the
warning (预警) message on ``warnings/v1/<account>`` (docs/mqtt-contract.md §11). The
models are the truth of the exported JSON Schemas (``docs/schemas/outbound/``); the
command service's messages are checked against them in its tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from wuwang.contract import CONTRACT_VERSION

WARNING_TOPIC = f"warnings/{CONTRACT_VERSION}/{{account}}"


class WarningArea(BaseModel):
    model_config = ConfigDict(extra="allow")

    polygon: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        description="[[lat, lon], …], WGS-84; empty when the area is cells or districts only"
    )
    cells: list[str] = Field(description="grid cell ids (r<row>c<col>) of the area")
    districts: list[int] = Field(description="GB/T 2260 adcodes of the area")


class WarningMessage(BaseModel):
    """A warning sent to a team or grid worker inside its area: issued (``alert``), a
    new version (``update``, ``references`` the one it replaces) or lifted (``cancel``)."""

    model_config = ConfigDict(extra="allow", title="warning")

    id: Annotated[str, Field(min_length=1, max_length=80, description="message id: identifier-kind")]
    ts: AwareDatetime
    kind: Literal["alert", "update", "cancel"]
    identifier: Annotated[
        str, Field(pattern=r"^[0-9]{14}_[0-9]{14}_[1-9][0-9]{0,5}$", description="GB/T 35965.1 identifier")
    ]
    references: str | None = Field(description="the identifier an update replaces")
    sender: str
    status: Literal["Actual", "Exercise"]
    event_type: str = Field(description="GET /warnings/vocabulary (GB/T 35561 sub-types)")
    level: Literal["red", "orange", "yellow", "blue"] = Field(description="red I … blue IV")
    headline: str
    description: str
    instruction: str
    onset: AwareDatetime
    expires: AwareDatetime
    area: WarningArea
    reason: str | None = Field(description="why it was cancelled (kind cancel)")


#: Schema name → model, exported to docs/schemas/outbound/<name>.schema.json.
OUTBOUND: dict[str, type[BaseModel]] = {"warning": WarningMessage}


def json_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, model in OUTBOUND.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"wuwang/{CONTRACT_VERSION}/outbound/{name}.schema.json"
        out[name] = schema
    return out
