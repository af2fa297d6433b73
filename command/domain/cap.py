"""CAP 1.2 (OASIS Common Alerting Protocol) under GB/T 35965.1-2018 (应急信息交互协议 第1部分：预警信息).

Pure: bytes in, values out, and back. The frozen :class:`CapAlert` tree mirrors CAP 1.2
(alert → info blocks → areas with polygons, circles and geocodes; parameters, event
codes, resources). :func:`to_cap_xml` writes it, :func:`parse_cap` reads it and refuses
anything unreadable or invalid with :class:`CapRefused` and a reason — never another
exception. Reading goes through ``defusedxml`` with DTDs forbidden: CAP needs no DTD,
so an external entity (XXE) or an entity expansion (billion laughs) is refused before
anything it names is opened. Validation against the OASIS XSD is a step the caller
hands in (``validate=``; command/cap_schema.py), because loading a schema file is I/O.

Also here: the GB/T 35965.1 identifier (:func:`gb_identifier`, :func:`parse_gb_identifier`),
the colour level ↔ severity/urgency/certainty mapping (:data:`LEVEL_CAP`), the adapter
from a warning's plain fields (:func:`cap_from_warning`), and the Atom feed of active
warnings (:func:`atom_feed`). docs/warnings.md, "CAP mapping", has the tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final, Literal
from xml.etree import ElementTree as ET  # writing only; reading is defusedxml's

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
#: Beijing time: GB/T 35965.1 writes the identifier's entry time in it.
BEIJING: Final = timezone(timedelta(hours=8), "CST")
#: The largest CAP file read; an agency's alert is a few kB, a big one with polygons 1 MB.
MAX_CAP_BYTES: Final = 2 * 1024 * 1024

STATUSES: Final = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES: Final = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES: Final = ("Public", "Restricted", "Private")
CATEGORIES: Final = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
RESPONSE_TYPES: Final = (
    "Shelter",
    "Evacuate",
    "Prepare",
    "Execute",
    "Avoid",
    "Monitor",
    "Assess",
    "AllClear",
    "None",
)
URGENCIES: Final = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES: Final = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES: Final = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

MsgType = Literal["Alert", "Update", "Cancel"]


class CapRefused(ValueError):
    """The input is not a CAP 1.2 alert this console reads; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class ValuePair:
    """``valueName``/``value`` (eventCode, parameter, geocode)."""

    name: str
    value: str


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class Area:
    description: str
    #: Each polygon is its closed ring of (lat, lon) points, WGS-84, first == last.
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[ValuePair, ...] = ()
    altitude: float | None = None
    ceiling: float | None = None


@dataclass(frozen=True)
class Resource:
    description: str
    mime_type: str
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Info:
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    language: str = "en-US"
    response_types: tuple[str, ...] = ()
    audience: str | None = None
    event_codes: tuple[ValuePair, ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[ValuePair, ...] = ()
    resources: tuple[Resource, ...] = ()
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True)
class Reference:
    """One earlier message an Update/Cancel refers to: ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    source: str | None = None
    restriction: str | None = None
    addresses: str | None = None
    codes: tuple[str, ...] = ()
    note: str | None = None
    references: tuple[Reference, ...] = ()
    incidents: str | None = None
    infos: tuple[Info, ...] = field(default=())


# --- writing --------------------------------------------------------------------------


def cap_time(t: datetime) -> str:
    """CAP's date-time: seconds, an explicit offset, never ``Z`` (CAP 1.2 §3.3.2)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("CAP times carry their offset: an aware datetime is needed")
    return t.replace(microsecond=0).isoformat()


def _num(x: float) -> str:
    return repr(float(x))


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, f"{{{CAP_NS}}}{tag}").text = text


def _pairs(parent: ET.Element, tag: str, pairs: Iterable[ValuePair]) -> None:
    for p in pairs:
        e = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        _sub(e, "valueName", p.name)
        _sub(e, "value", p.value)


def _polygon_text(ring: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(lat)},{_num(lon)}" for lat, lon in ring)


def _write_area(parent: ET.Element, area: Area) -> None:
    a = ET.SubElement(parent, f"{{{CAP_NS}}}area")
    _sub(a, "areaDesc", area.description)
    for ring in area.polygons:
        _sub(a, "polygon", _polygon_text(ring))
    for c in area.circles:
        _sub(a, "circle", f"{_num(c.lat)},{_num(c.lon)} {_num(c.radius_km)}")
    _pairs(a, "geocode", area.geocodes)
    _sub(a, "altitude", None if area.altitude is None else _num(area.altitude))
    _sub(a, "ceiling", None if area.ceiling is None else _num(area.ceiling))


def _write_info(parent: ET.Element, info: Info) -> None:
    i = ET.SubElement(parent, f"{{{CAP_NS}}}info")
    _sub(i, "language", info.language)
    for c in info.categories:
        _sub(i, "category", c)
    _sub(i, "event", info.event)
    for response in info.response_types:
        _sub(i, "responseType", response)
    _sub(i, "urgency", info.urgency)
    _sub(i, "severity", info.severity)
    _sub(i, "certainty", info.certainty)
    _sub(i, "audience", info.audience)
    _pairs(i, "eventCode", info.event_codes)
    for tag, t in (("effective", info.effective), ("onset", info.onset), ("expires", info.expires)):
        _sub(i, tag, None if t is None else cap_time(t))
    _sub(i, "senderName", info.sender_name)
    _sub(i, "headline", info.headline)
    _sub(i, "description", info.description)
    _sub(i, "instruction", info.instruction)
    _sub(i, "web", info.web)
    _sub(i, "contact", info.contact)
    _pairs(i, "parameter", info.parameters)
    for res in info.resources:
        e = ET.SubElement(i, f"{{{CAP_NS}}}resource")
        _sub(e, "resourceDesc", res.description)
        _sub(e, "mimeType", res.mime_type)
        _sub(e, "size", None if res.size is None else str(res.size))
        _sub(e, "uri", res.uri)
        _sub(e, "derefUri", res.deref_uri)
        _sub(e, "digest", res.digest)
    for area in info.areas:
        _write_area(i, area)


def to_cap_xml(alert: CapAlert) -> bytes:
    """The alert as a CAP 1.2 document (UTF-8, the CAP namespace as the default one)."""
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", alert.sender)
    _sub(root, "sent", cap_time(alert.sent))
    _sub(root, "status", alert.status)
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "source", alert.source)
    _sub(root, "scope", alert.scope)
    _sub(root, "restriction", alert.restriction)
    _sub(root, "addresses", alert.addresses)
    for code in alert.codes:
        _sub(root, "code", code)
    _sub(root, "note", alert.note)
    if alert.references:
        _sub(
            root,
            "references",
            " ".join(f"{r.sender},{r.identifier},{cap_time(r.sent)}" for r in alert.references),
        )
    _sub(root, "incidents", alert.incidents)
    for info in alert.infos:
        _write_info(root, info)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)
    return body


# --- reading --------------------------------------------------------------------------


def read_xml(data: bytes) -> ET.Element:
    """Parse ``data`` with DTDs, entities and external references forbidden."""
    if not isinstance(data, bytes | bytearray):
        raise CapRefused("a CAP file is bytes")
    if len(data) > MAX_CAP_BYTES:
        raise CapRefused(f"file larger than {MAX_CAP_BYTES} bytes")
    if not data.strip():
        raise CapRefused("empty file")
    try:
        root: ET.Element = SafeET.fromstring(
            bytes(data), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as e:
        # DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden: nothing was resolved.
        refused = type(e).__name__
        raise CapRefused(f"DTDs and entities are refused (XXE / entity expansion): {refused}") from None
    except ET.ParseError as e:
        raise CapRefused(f"not well-formed XML: {e}") from None
    except (ValueError, LookupError, UnicodeError, RecursionError) as e:  # encodings expat cannot read
        raise CapRefused(f"unreadable XML: {type(e).__name__}") from None
    return root


def _local(tag: object) -> tuple[str | None, str]:
    if not isinstance(tag, str):  # a comment or processing instruction
        return None, ""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


class _Reader:
    """The children of one CAP element, by name; other namespaces (a signature) are left."""

    def __init__(self, element: ET.Element, where: str) -> None:
        self.where = where
        self.children: list[tuple[str, ET.Element]] = []
        for child in element:
            ns, name = _local(child.tag)
            if ns == CAP_NS:
                self.children.append((name, child))
            elif ns == "":
                raise CapRefused(f"{where}: element <{name}> outside the CAP 1.2 namespace")

    def all(self, name: str) -> list[ET.Element]:
        return [e for n, e in self.children if n == name]

    def texts(self, name: str) -> list[str]:
        out = []
        for e in self.all(name):
            if len(e):
                raise CapRefused(f"{self.where}/{name}: text expected, found elements")
            out.append((e.text or "").strip())
        return out

    def opt(self, name: str) -> str | None:
        values = self.texts(name)
        if len(values) > 1:
            raise CapRefused(f"{self.where}: <{name}> more than once")
        return values[0] if values else None

    def one(self, name: str) -> str:
        value = self.opt(name)
        if value is None or value == "":
            raise CapRefused(f"{self.where}: <{name}> is required")
        return value

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self.one(name)
        if value not in allowed:
            raise CapRefused(f"{self.where}/{name}: {value!r} is not one of {', '.join(allowed)}")
        return value


_CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")


def parse_cap_time(text: str, where: str) -> datetime:
    if not _CAP_TIME.fullmatch(text):
        raise CapRefused(f"{where}: {text!r} is not a CAP time (YYYY-MM-DDThh:mm:ss±hh:mm)")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CapRefused(f"{where}: {text!r} is not a valid time") from None


def _opt_time(r: _Reader, name: str) -> datetime | None:
    text = r.opt(name)
    return None if text is None else parse_cap_time(text, f"{r.where}/{name}")


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CapRefused(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise CapRefused(f"{where}: {text!r} is not a finite number")
    return value


def _point(text: str, where: str) -> tuple[float, float]:
    lat_text, comma, lon_text = text.partition(",")
    if not comma:
        raise CapRefused(f"{where}: {text!r} is not a 'lat,lon' point")
    lat, lon = _number(lat_text, where), _number(lon_text, where)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapRefused(f"{where}: {text!r} is outside WGS-84 (lat ±90, lon ±180)")
    return lat, lon


def _polygon(text: str, where: str) -> tuple[tuple[float, float], ...]:
    ring = tuple(_point(p, where) for p in text.split())
    if len(ring) < 4:
        raise CapRefused(f"{where}: a polygon needs at least four points")
    if ring[0] != ring[-1]:
        raise CapRefused(f"{where}: a polygon's first and last points must be the same")
    return ring


def _circle(text: str, where: str) -> Circle:
    parts = text.split()
    if len(parts) != 2:
        raise CapRefused(f"{where}: {text!r} is not 'lat,lon radius'")
    lat, lon = _point(parts[0], where)
    radius = _number(parts[1], where)
    if radius < 0:
        raise CapRefused(f"{where}: a negative radius")
    return Circle(lat, lon, radius)


def _value_pairs(r: _Reader, name: str) -> tuple[ValuePair, ...]:
    out = []
    for e in r.all(name):
        pr = _Reader(e, f"{r.where}/{name}")
        out.append(ValuePair(pr.one("valueName"), pr.opt("value") or ""))
    return tuple(out)


def _area(e: ET.Element, where: str) -> Area:
    r = _Reader(e, where)
    altitude, ceiling = r.opt("altitude"), r.opt("ceiling")
    if ceiling is not None and altitude is None:
        raise CapRefused(f"{where}: <ceiling> needs <altitude>")
    return Area(
        description=r.one("areaDesc"),
        polygons=tuple(_polygon(t, f"{where}/polygon") for t in r.texts("polygon")),
        circles=tuple(_circle(t, f"{where}/circle") for t in r.texts("circle")),
        geocodes=_value_pairs(r, "geocode"),
        altitude=None if altitude is None else _number(altitude, f"{where}/altitude"),
        ceiling=None if ceiling is None else _number(ceiling, f"{where}/ceiling"),
    )


def _resource(e: ET.Element, where: str) -> Resource:
    r = _Reader(e, where)
    size = r.opt("size")
    if size is not None and not size.isdigit():
        raise CapRefused(f"{where}/size: {size!r} is not a whole number")
    return Resource(
        description=r.one("resourceDesc"),
        mime_type=r.one("mimeType"),
        size=None if size is None else int(size),
        uri=r.opt("uri"),
        deref_uri=r.opt("derefUri"),
        digest=r.opt("digest"),
    )


def _checked(values: list[str], allowed: Sequence[str], where: str) -> tuple[str, ...]:
    for v in values:
        if v not in allowed:
            raise CapRefused(f"{where}: {v!r} is not one of {', '.join(allowed)}")
    return tuple(values)


def _info(e: ET.Element, where: str) -> Info:
    r = _Reader(e, where)
    categories = _checked(r.texts("category"), CATEGORIES, f"{where}/category")
    if not categories:
        raise CapRefused(f"{where}: <category> is required")
    return Info(
        language=r.opt("language") or "en-US",  # CAP 1.2: no language means en-US
        categories=categories,
        event=r.one("event"),
        response_types=_checked(r.texts("responseType"), RESPONSE_TYPES, f"{where}/responseType"),
        urgency=r.choice("urgency", URGENCIES),
        severity=r.choice("severity", SEVERITIES),
        certainty=r.choice("certainty", CERTAINTIES),
        audience=r.opt("audience"),
        event_codes=_value_pairs(r, "eventCode"),
        effective=_opt_time(r, "effective"),
        onset=_opt_time(r, "onset"),
        expires=_opt_time(r, "expires"),
        sender_name=r.opt("senderName"),
        headline=r.opt("headline"),
        description=r.opt("description"),
        instruction=r.opt("instruction"),
        web=r.opt("web"),
        contact=r.opt("contact"),
        parameters=_value_pairs(r, "parameter"),
        resources=tuple(_resource(x, f"{where}/resource") for x in r.all("resource")),
        areas=tuple(_area(x, f"{where}/area") for x in r.all("area")),
    )


def parse_references(text: str) -> tuple[Reference, ...]:
    """``sender,identifier,sent`` triples separated by white space (CAP 1.2 §3.2.1)."""
    out = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise CapRefused(f"alert/references: {triple!r} is not 'sender,identifier,sent'")
        out.append(Reference(parts[0], parts[1], parse_cap_time(parts[2], "alert/references")))
    return tuple(out)


_NO_SPACE = re.compile(r"[^\s,<&]+")


def alert_from_element(root: ET.Element) -> CapAlert:
    """The :class:`CapAlert` an already parsed ``<alert>`` element holds."""
    ns, name = _local(root.tag)
    if name != "alert" or ns != CAP_NS:
        raise CapRefused(f"the root element is not a CAP 1.2 <alert> ({CAP_NS})")
    r = _Reader(root, "alert")
    identifier, sender = r.one("identifier"), r.one("sender")
    for what, value in (("identifier", identifier), ("sender", sender)):
        if not _NO_SPACE.fullmatch(value):
            raise CapRefused(f"alert/{what}: no spaces, commas, '<' or '&' (CAP 1.2)")
    msg_type = r.choice("msgType", MSG_TYPES)
    scope = r.choice("scope", SCOPES)
    restriction, addresses = r.opt("restriction"), r.opt("addresses")
    if scope == "Restricted" and not restriction:
        raise CapRefused("alert: a Restricted alert needs <restriction>")
    if scope == "Private" and not addresses:
        raise CapRefused("alert: a Private alert needs <addresses>")
    references_text = r.opt("references")
    references = parse_references(references_text) if references_text else ()
    if msg_type in ("Update", "Cancel") and not references:
        raise CapRefused(f"alert: an {msg_type} names what it refers to in <references>")
    infos = tuple(_info(e, f"alert/info[{n}]") for n, e in enumerate(r.all("info"), start=1))
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=parse_cap_time(r.one("sent"), "alert/sent"),
        status=r.choice("status", STATUSES),
        msg_type=msg_type,
        scope=scope,
        source=r.opt("source"),
        restriction=restriction,
        addresses=addresses,
        codes=tuple(r.texts("code")),
        note=r.opt("note"),
        references=references,
        incidents=r.opt("incidents"),
        infos=infos,
    )


def parse_cap(data: bytes, *, validate: Callable[[ET.Element], None] | None = None) -> CapAlert:
    """Read a CAP 1.2 alert; anything unreadable or invalid is :class:`CapRefused`.

    ``validate`` checks the parsed tree before it is read (the XSD: command/cap_schema.py)
    and raises CapRefused itself.
    """
    root = read_xml(data)
    if validate is not None:
        validate(root)
    try:
        return alert_from_element(root)
    except RecursionError:  # pragma: no cover - expat's nesting limit comes first
        raise CapRefused("nested too deeply") from None


# --- GB/T 35965.1 identifier ----------------------------------------------------------

_SENDER_CODE = re.compile(r"(\d{6})(\d{3})(\d{3})(\d{2})")
_GB_IDENTIFIER = re.compile(r"(\d{14})_(\d{14})_([1-9]\d{0,5})")
#: GB/T 2260 code of 襄阳市, the demo city.
XIANGYANG: Final = "420600"


@dataclass(frozen=True)
class SenderCode:
    """The 14 digits before the first ``_``: where (GB/T 2260), which institution, which unit."""

    area: str = XIANGYANG
    institution: str = "000"
    unit: str = "000"
    extension: str = "00"

    def __post_init__(self) -> None:
        if not _SENDER_CODE.fullmatch(str(self)):
            raise ValueError(
                "sender code: area 6 digits (GB/T 2260), institution 3, unit 3, extension 2; "
                f"got {self.area!r} {self.institution!r} {self.unit!r} {self.extension!r}"
            )
        if self.area[:2] == "00":  # GB/T 2260 provinces are 11 … 82
            raise ValueError(f"sender code: {self.area!r} is not a GB/T 2260 area")

    def __str__(self) -> str:
        return f"{self.area}{self.institution}{self.unit}{self.extension}"


@dataclass(frozen=True)
class GbIdentifier:
    sender: SenderCode
    entered: datetime  # Beijing time, to the second
    sequence: int

    def __str__(self) -> str:
        return f"{self.sender}_{self.entered.strftime('%Y%m%d%H%M%S')}_{self.sequence}"


def gb_identifier(sender: SenderCode, entered: datetime, sequence: int) -> str:
    """``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N``: the sender code, the entry time in Beijing time,
    and the sequence among this sender's warnings entered in that second (1, 2, …)."""
    if entered.tzinfo is None:
        raise ValueError("the entry time must be aware")
    if not 1 <= sequence <= 999_999:
        raise ValueError("the sequence is 1 … 999999")
    return str(GbIdentifier(sender, entered.astimezone(BEIJING).replace(microsecond=0), sequence))


def parse_gb_identifier(text: str) -> GbIdentifier:
    """The parts of a GB/T 35965.1 identifier; ValueError when ``text`` is not one."""
    m = _GB_IDENTIFIER.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N")
    code = _SENDER_CODE.fullmatch(m[1])
    assert code is not None  # 14 digits always split
    entered = datetime.strptime(m[2], "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    return GbIdentifier(SenderCode(*code.groups()), entered, int(m[3]))


def next_sequence(issued: Iterable[str], sender: SenderCode, entered: datetime) -> int:
    """The sequence for a warning entered at ``entered``: one past the highest this sender
    used in that same second (``issued``: identifiers already given out)."""
    second = entered.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    prefix = f"{sender}_{second}_"
    used = [int(i[len(prefix) :]) for i in issued if i.startswith(prefix) and i[len(prefix) :].isdigit()]
    return max(used, default=0) + 1


# --- colour levels --------------------------------------------------------------------


@dataclass(frozen=True)
class LevelCap:
    colour_zh: str
    roman: str
    severity: str
    urgency: str
    certainty: str


#: 预警级别 → CAP. Severity follows GB/T 35965.1 (蓝 Minor … 红 Extreme); urgency and
#: certainty follow how close and how sure each colour is in the national signal rules
#: (blue: may happen within a day; red: imminent or under way). docs/warnings.md.
LEVEL_CAP: Final[dict[str, LevelCap]] = {
    "blue": LevelCap("蓝色", "IV", "Minor", "Future", "Possible"),
    "yellow": LevelCap("黄色", "III", "Moderate", "Expected", "Likely"),
    "orange": LevelCap("橙色", "II", "Severe", "Immediate", "Likely"),
    "red": LevelCap("红色", "I", "Extreme", "Immediate", "Likely"),
}
_SEVERITY_LEVEL: Final = {spec.severity: level for level, spec in LEVEL_CAP.items()}
_LEVEL_ALIASES: Final = {
    **{k: k for k in LEVEL_CAP},
    **{v.colour_zh: k for k, v in LEVEL_CAP.items()},
    **{v.colour_zh[0]: k for k, v in LEVEL_CAP.items()},
    **{v.roman: k for k, v in LEVEL_CAP.items()},
}


def level_key(level: str) -> str:
    """``blue|yellow|orange|red`` from any of its names (蓝/蓝色/IV/blue)."""
    key = _LEVEL_ALIASES.get(level.strip().lower() if level.isascii() else level.strip())
    if key is None:
        key = _LEVEL_ALIASES.get(level.strip().upper())
    if key is None:
        raise ValueError(f"{level!r} is not a warning level (蓝/黄/橙/红, IV…I)")
    return key


def level_of_severity(severity: str) -> str | None:
    """The colour an inbound alert's severity stands for; ``None`` for Unknown."""
    return _SEVERITY_LEVEL.get(severity)


def level_of(alert: CapAlert) -> str | None:
    """The highest colour among the alert's info blocks (an agency's zh and en blocks agree)."""
    order = list(LEVEL_CAP)
    levels = [lv for lv in (level_of_severity(i.severity) for i in alert.infos) if lv is not None]
    return max(levels, key=order.index) if levels else None


# --- from a warning's plain fields ----------------------------------------------------


@dataclass(frozen=True)
class WarningText:
    """One language's words of a warning (zh-CN always; en when written)."""

    language: str
    event: str
    headline: str
    description: str
    instruction: str | None = None
    area_description: str = ""
    sender_name: str | None = None


#: GB/T 35561 category (its first digit) → CAP category.
GB35561_CAP_CATEGORY: Final = {
    "1": "Met",  # 自然灾害 — earthquakes and floods are refined by the code's second digit below
    "2": "Safety",  # 事故灾难
    "3": "Health",  # 公共卫生事件
    "4": "Security",  # 社会安全事件
}
_NATURAL: Final = {"11": "Met", "12": "Geo", "13": "Geo", "14": "Geo", "15": "Env"}


def cap_category(event_type: str) -> str:
    """CAP's category for a GB/T 35561 event type code (``11B04`` …); Other when unknown."""
    if event_type[:2] in _NATURAL:
        return _NATURAL[event_type[:2]]
    return GB35561_CAP_CATEGORY.get(event_type[:1], "Other")


def cap_from_warning(
    *,
    identifier: str,
    sender: str,
    sent: datetime,
    level: str,
    event_type: str,
    texts: Sequence[WarningText],
    onset: datetime | None = None,
    expires: datetime | None = None,
    msg_type: MsgType = "Alert",
    references: Sequence[Reference] = (),
    exercise: bool = False,
    observed: bool = False,
    polygons: Sequence[Sequence[tuple[float, float]]] = (),
    geocodes: Sequence[ValuePair] = (),
    response_types: Sequence[str] = (),
    web: str | None = None,
    contact: str | None = None,
    note: str | None = None,
) -> CapAlert:
    """A warning as CAP 1.2: one info block per language, each with the same level,
    times, event code and area. Plain fields, so any warning model maps onto it.

    ``level`` is the colour (蓝/黄/橙/红, IV…I, blue…red); ``event_type`` a GB/T 35561 code;
    ``polygons`` closed rings of (lat, lon), WGS-84; ``geocodes`` e.g. GB/T 2260 district
    codes or the console's grid cells; ``exercise``: a drill's warning (status Exercise).
    """
    if not texts:
        raise ValueError("a warning needs its words in at least one language")
    if msg_type != "Alert" and not references:
        raise ValueError(f"an {msg_type} names the message(s) it refers to")
    spec = LEVEL_CAP[level_key(level)]
    rings = tuple(tuple((float(lat), float(lon)) for lat, lon in ring) for ring in polygons)
    for ring in rings:
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise ValueError("a polygon is a closed ring of at least four points")
    infos = tuple(
        Info(
            language=t.language,
            categories=(cap_category(event_type),),
            event=t.event,
            response_types=tuple(response_types) if msg_type != "Cancel" else ("AllClear",),
            urgency=spec.urgency,
            severity=spec.severity,
            certainty="Observed" if observed else spec.certainty,
            event_codes=(ValuePair("GB/T 35561", event_type),),
            effective=sent,
            onset=onset,
            expires=expires,
            sender_name=t.sender_name,
            headline=t.headline,
            description=t.description,
            instruction=t.instruction,
            web=web,
            contact=contact,
            parameters=(ValuePair("预警级别", spec.colour_zh), ValuePair("level", spec.roman)),
            areas=(Area(t.area_description or "—", rings, (), tuple(geocodes)),) if rings or geocodes else (),
        )
        for t in texts
    )
    return CapAlert(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status="Exercise" if exercise else "Actual",
        msg_type=msg_type,
        scope="Public",
        note=note,
        references=tuple(references),
        infos=infos,
    )


# --- Atom feed ------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    """One active warning in the feed: its CAP file's URL and what a reader lists."""

    id: str
    title: str
    updated: datetime
    cap_url: str
    summary: str = ""
    level: str | None = None
    expires: datetime | None = None


def feed_entry(alert: CapAlert, cap_url: str) -> FeedEntry:
    """The feed entry of an exported alert (its first info block's words)."""
    info = alert.infos[0] if alert.infos else None
    title = (info.headline or info.event) if info is not None else alert.identifier
    return FeedEntry(
        id=f"urn:cap:{alert.sender}:{alert.identifier}",
        title=title,
        updated=alert.sent,
        cap_url=cap_url,
        summary=(info.description or "") if info is not None else "",
        level=level_of(alert),
        expires=info.expires if info is not None else None,
    )


def atom_feed(
    entries: Sequence[FeedEntry], *, feed_id: str, title: str, updated: datetime, self_url: str
) -> bytes:
    """An Atom (RFC 4287) feed whose entries link their CAP file (type application/cap+xml),
    the way downstream release systems (预警信息发布系统, 应急广播) poll for warnings."""

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, tag, attrs)
        if text is not None:
            e.text = text
        return e

    # Plain names under an xmlns attribute: ElementTree's default_namespace refuses the
    # unqualified attribute names Atom uses (rel, href, term).
    feed = ET.Element("feed", xmlns=ATOM_NS)
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", cap_time(updated))
    sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for entry in entries:
        e = sub(feed, "entry")
        sub(e, "id", entry.id)
        sub(e, "title", entry.title)
        sub(e, "updated", cap_time(entry.updated))
        sub(e, "link", rel="alternate", href=entry.cap_url, type="application/cap+xml")
        if entry.summary:
            sub(e, "summary", entry.summary)
        if entry.level is not None:
            sub(e, "category", term=entry.level, label=LEVEL_CAP[entry.level].colour_zh)
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


# --- inbound warnings -----------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """What the console keeps of an agency's alert, and what it does to earlier ones."""

    alert: CapAlert
    state: Literal["active", "cancelled"]
    #: What the messages it references become: an Update replaces them, a Cancel ends them.
    retires: Literal["updated", "cancelled"] | None
    level: str | None
    onset: datetime | None
    expires: datetime | None


_RETIRES: Final[dict[str, Literal["updated", "cancelled"]]] = {"Update": "updated", "Cancel": "cancelled"}


def inbound(alert: CapAlert) -> Inbound:
    """The inbound warning an imported alert is; CapRefused for what is no warning
    (Ack and Error answer a message; an alert without ``<info>`` has nothing to show)."""
    if alert.msg_type not in ("Alert", "Update", "Cancel"):
        raise CapRefused(f"msgType {alert.msg_type} is not a warning (Alert, Update or Cancel)")
    if not alert.infos:
        raise CapRefused("alert without <info>: no event, level or area to show")
    onsets = [t for t in (i.onset or i.effective for i in alert.infos) if t is not None]
    expiries = [i.expires for i in alert.infos]
    return Inbound(
        alert=alert,
        state="cancelled" if alert.msg_type == "Cancel" else "active",
        retires=_RETIRES.get(alert.msg_type),
        level=level_of(alert),
        onset=min(onsets) if onsets else None,
        # one block without an end keeps the warning until it is cancelled
        expires=None if any(e is None for e in expiries) else max(e for e in expiries if e is not None),
    )


def area_json(area: Area) -> dict[str, object]:
    """An area as the map draws it: polygons as [lat, lon] rings, circles in km."""
    return {
        "description": area.description,
        "polygons": [[[lat, lon] for lat, lon in ring] for ring in area.polygons],
        "circles": [{"lat": c.lat, "lon": c.lon, "radius_km": c.radius_km} for c in area.circles],
        "geocodes": [{"name": g.name, "value": g.value} for g in area.geocodes],
    }


def info_json(info: Info) -> dict[str, object]:
    """One language's words and codes (the areas are kept apart, once per alert)."""
    return {
        "language": info.language,
        "event": info.event,
        "headline": info.headline,
        "description": info.description,
        "instruction": info.instruction,
        "sender_name": info.sender_name,
        "event_codes": [{"name": p.name, "value": p.value} for p in info.event_codes],
        "parameters": [{"name": p.name, "value": p.value} for p in info.parameters],
    }
