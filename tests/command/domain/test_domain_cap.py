"""CAP 1.2 / GB/T 35965.1 (command/domain/cap.py, command/cap_schema.py): the OASIS
examples and agency-shaped alerts of our own read, round-trip and validate; the
identifier, the colour mapping, the adapter and the Atom feed; hostile XML is refused
without anything it names being read; fuzzed input raises nothing but CapRefused."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command.cap_schema import read_cap, validate_cap
from command.domain import cap
from command.domain.cap import (
    BEIJING,
    CapAlert,
    CapRefused,
    Reference,
    SenderCode,
    ValuePair,
    WarningText,
    atom_feed,
    cap_from_warning,
    feed_entry,
    gb_identifier,
    level_key,
    level_of,
    next_sequence,
    parse_cap,
    parse_gb_identifier,
    read_xml,
    to_cap_xml,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "cap"
OASIS = sorted(DATA.glob("Oasis_*.xml"))
CST = timezone(timedelta(hours=8))

# An agency's alert as meteorology sends it: zh-CN and en info blocks, a polygon, a circle,
# geocodes, several event codes and parameters, a resource.
AGENCY = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>42060041600000_20260707143000_1</identifier>
  <sender>42060041600000</sender>
  <sent>2026-07-07T14:30:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <code>GB/T 35965.1</code>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <responseType>Prepare</responseType>
    <responseType>Avoid</responseType>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>GB/T 35561</valueName><value>11B04</value></eventCode>
    <eventCode><valueName>CMA</valueName><value>11B03</value></eventCode>
    <effective>2026-07-07T14:30:00+08:00</effective>
    <onset>2026-07-07T15:00:00+08:00</onset>
    <expires>2026-07-08T02:30:00+08:00</expires>
    <senderName>襄阳市气象台</senderName>
    <headline>襄阳市气象台发布暴雨黄色预警信号</headline>
    <description>预计未来6小时内襄城区、樊城区降雨量将达50毫米以上。</description>
    <instruction>注意防范城市内涝，避免前往低洼地带。</instruction>
    <web>http://hb.cma.gov.cn/</web>
    <parameter><valueName>预警级别</valueName><value>黄色</value></parameter>
    <parameter><valueName>level</valueName><value>III</value></parameter>
    <resource>
      <resourceDesc>预警信号图标</resourceDesc>
      <mimeType>image/png</mimeType>
      <size>1024</size>
      <uri>http://example.invalid/yellow.png</uri>
    </resource>
    <area>
      <areaDesc>襄城区、樊城区</areaDesc>
      <polygon>32.0,112.1 32.1,112.1 32.1,112.2 32.0,112.2 32.0,112.1</polygon>
      <circle>32.042,112.144 5.5</circle>
      <geocode><valueName>GB/T 2260</valueName><value>420602</value></geocode>
      <geocode><valueName>GB/T 2260</valueName><value>420606</value></geocode>
      <altitude>0</altitude>
      <ceiling>3000</ceiling>
    </area>
  </info>
  <info>
    <language>en</language>
    <category>Met</category>
    <event>Rainstorm</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>GB/T 35561</valueName><value>11B04</value></eventCode>
    <headline>Yellow rainstorm warning for Xiangyang</headline>
    <area>
      <areaDesc>Xiangcheng and Fancheng districts</areaDesc>
      <polygon>32.0,112.1 32.1,112.1 32.1,112.2 32.0,112.2 32.0,112.1</polygon>
      <geocode><valueName>GB/T 2260</valueName><value>420602</value></geocode>
    </area>
  </info>
</alert>
""".encode()


# --- the OASIS examples and our own ----------------------------------------------------


def test_the_oasis_examples_are_all_there() -> None:
    assert [p.name for p in OASIS] == [
        "Oasis_AmberAlert.xml",
        "Oasis_EarthquakeReport.xml",
        "Oasis_HomelandAlert.xml",
        "Oasis_ThunderstormWarning.xml",
    ]


@pytest.mark.parametrize("path", OASIS, ids=lambda p: p.stem)
def test_oasis_example_reads_validates_and_round_trips(path: Path) -> None:
    data = path.read_bytes()
    validate_cap(read_xml(data))
    alert = read_cap(data)
    assert alert.identifier and alert.sender and alert.infos
    written = to_cap_xml(alert)
    validate_cap(read_xml(written))  # what we write is valid CAP too
    assert read_cap(written) == alert


def test_oasis_earthquake_update_keeps_its_reference() -> None:
    alert = read_cap((DATA / "Oasis_EarthquakeReport.xml").read_bytes())
    assert alert.msg_type == "Update"
    assert alert.references == (
        Reference("trinet@caltech.edu", "TRI13970876.1", datetime(2003, 6, 12, 3, 30, tzinfo=UTC)),
    )


def test_oasis_amber_alert_has_its_two_languages() -> None:
    alert = read_cap((DATA / "Oasis_AmberAlert.xml").read_bytes())
    assert [i.language for i in alert.infos] == ["en-US", "es-US"]


def test_an_agency_alert_with_every_kind_of_area_reads_whole() -> None:
    alert = read_cap(AGENCY)
    zh, en = alert.infos
    assert (zh.language, en.language) == ("zh-CN", "en")
    assert zh.response_types == ("Prepare", "Avoid")
    assert zh.event_codes == (ValuePair("GB/T 35561", "11B04"), ValuePair("CMA", "11B03"))
    assert zh.parameters == (ValuePair("预警级别", "黄色"), ValuePair("level", "III"))
    assert zh.expires == datetime(2026, 7, 8, 2, 30, tzinfo=CST)
    (area,) = zh.areas
    assert area.polygons == (((32.0, 112.1), (32.1, 112.1), (32.1, 112.2), (32.0, 112.2), (32.0, 112.1)),)
    assert area.circles == (cap.Circle(32.042, 112.144, 5.5),)
    assert [g.value for g in area.geocodes] == ["420602", "420606"]
    assert (area.altitude, area.ceiling) == (0.0, 3000.0)
    assert zh.resources == (
        cap.Resource("预警信号图标", "image/png", 1024, "http://example.invalid/yellow.png"),
    )
    assert en.headline == "Yellow rainstorm warning for Xiangyang"
    assert level_of(alert) == "yellow"
    written = to_cap_xml(alert)
    validate_cap(read_xml(written))
    assert read_cap(written) == alert


# --- refusals ---------------------------------------------------------------------------


def _without(tag: str) -> bytes:
    start = AGENCY.index(f"<{tag}>".encode())
    end = AGENCY.index(f"</{tag}>".encode()) + len(f"</{tag}>")
    return AGENCY[:start] + AGENCY[end:]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"not xml at all", "not well-formed XML"),
        (b"<alert><unclosed></alert>", "not well-formed XML"),
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.1'/>", "not a CAP 1.2 <alert>"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "not a CAP 1.2 <alert>"),
        (_without("sender"), "<sender> is required"),
        (AGENCY.replace(b"<status>Actual", b"<status>Real"), "'Real' is not one of"),
        (AGENCY.replace(b"<msgType>Alert", b"<msgType>Update"), "names what it refers to"),
        (AGENCY.replace(b"+08:00</sent>", b"Z</sent>"), "not a CAP time"),
        (AGENCY.replace(b"32.0,112.1</polygon>", b"32.05,112.1</polygon>", 1), "first and last points"),
        (AGENCY.replace(b"32.042,112.144 5.5", b"95,112.144 5.5"), "outside WGS-84"),
        (AGENCY.replace(b"<severity>Moderate", b"<severity>Big", 1), "'Big' is not one of"),
    ],
)
def test_invalid_alerts_are_refused_with_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CapRefused) as refused:
        parse_cap(data)
    assert reason in refused.value.reason


def test_the_xsd_refuses_what_the_reader_alone_would_not_check() -> None:
    # an element in the wrong order: the reader reads by name, the schema checks the sequence
    swapped = AGENCY.replace(
        b"<status>Actual</status>\n  <msgType>Alert</msgType>",
        b"<msgType>Alert</msgType><status>Actual</status>",
    )
    parse_cap(swapped)  # the domain alone reads it
    with pytest.raises(CapRefused) as refused:
        read_cap(swapped)
    assert "OASIS schema" in refused.value.reason


def test_oversized_files_are_refused_before_parsing() -> None:
    with pytest.raises(CapRefused, match="larger than"):
        parse_cap(b" " * (cap.MAX_CAP_BYTES + 1))


# --- hostile XML: nothing it names is read ----------------------------------------------

_watching: list[tuple[str, tuple[object, ...]]] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _watching is not None and event in ("open", "socket.connect", "socket.getaddrinfo", "urllib.Request"):
        _watching.append((event, args))


sys.addaudithook(_audit)  # a hook stays for the process; it records only inside `watched`


@pytest.fixture
def watched() -> Iterator[list[tuple[str, tuple[object, ...]]]]:
    global _watching
    _watching = []
    try:
        yield _watching
    finally:
        _watching = None


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that notes every request (an XXE fetch would land here)."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<!ENTITY leaked 'x'>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _hostile(tmp_path: Path, url: str) -> dict[str, bytes]:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    body = b"<identifier>&xxe;</identifier><sender>a</sender>"
    head = b'<?xml version="1.0"?>\n'
    alert = b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'>" + body + b"</alert>"
    laughs = b"".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">'.encode() for n in range(1, 10))
    return {
        "xxe file": head + f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file://{secret}">]>'.encode() + alert,
        "xxe http": head + f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "{url}/xxe">]>'.encode() + alert,
        "parameter entity": head
        + f'<!DOCTYPE alert [<!ENTITY % p SYSTEM "{url}/dtd"> %p;]>'.encode()
        + alert,
        "external dtd": head + f'<!DOCTYPE alert SYSTEM "{url}/cap.dtd">'.encode() + alert,
        "billion laughs": head
        + b'<!DOCTYPE alert [<!ENTITY lol0 "lol">'
        + laughs
        + b"]>"
        + alert.replace(b"&xxe;", b"&lol9;"),
    }


def test_xxe_and_entity_expansion_are_refused_and_nothing_is_read(
    tmp_path: Path, web_server: tuple[str, list[str]], watched: list[tuple[str, tuple[object, ...]]]
) -> None:
    url, requests = web_server
    files = _hostile(tmp_path, url)
    validate_cap(read_xml(AGENCY))  # load the XSD now so its one file open is not counted
    watched.clear()
    for name, data in files.items():
        with pytest.raises(CapRefused) as refused:
            read_cap(data)
        assert "refused" in refused.value.reason, name
    opened = [args for event, args in watched if event == "open"]
    assert not [a for a in opened if "secret" in str(a[0])], opened
    assert not [e for e in watched if e[0] != "open"], watched
    assert requests == []


def test_the_watch_would_notice_a_read_and_a_fetch(
    tmp_path: Path, web_server: tuple[str, list[str]], watched: list[tuple[str, tuple[object, ...]]]
) -> None:
    # the same checks see what the stdlib's unprotected parser would do with the XXE
    import urllib.request
    from xml.sax import make_parser
    from xml.sax.handler import feature_external_ges

    url, requests = web_server
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    parser = make_parser()
    parser.setFeature(feature_external_ges, True)
    doc = tmp_path / "doc.xml"
    doc.write_text(f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]><a>&x;</a>')
    parser.parse(str(doc))
    with urllib.request.urlopen(f"{url}/probe") as answer:
        answer.read()
    assert any("secret" in str(args[0]) for event, args in watched if event == "open")
    assert any(event == "socket.connect" for event, _ in watched)
    assert requests == ["/probe"]


# --- fuzz ---------------------------------------------------------------------------------


def _mutations() -> st.SearchStrategy[bytes]:
    cut = st.integers(0, len(AGENCY)).map(lambda n: AGENCY[:n])
    splice = st.tuples(st.integers(0, len(AGENCY)), st.binary(max_size=40)).map(
        lambda t: AGENCY[: t[0]] + t[1] + AGENCY[t[0] :]
    )
    text = st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))
    return st.one_of(st.binary(max_size=300), cut, splice, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_fuzzed_input_raises_nothing_but_cap_refused(data: bytes) -> None:
    for read in (parse_cap, read_cap):
        refusal: CapRefused | None = None
        try:
            read(data)
        except CapRefused as refused:
            refusal = refused
        assert refusal is None or refusal.reason


# --- GB/T 35965.1 identifier ----------------------------------------------------------------

XY = SenderCode("420600", "416", "000", "00")


def test_identifier_has_the_gb_form_in_beijing_time() -> None:
    entered = datetime(2026, 7, 7, 16, 30, 5, 999_000, tzinfo=UTC)  # 00:30:05 next day in Beijing
    ident = gb_identifier(XY, entered, 1)
    assert ident == "42060041600000_20260708003005_1"
    parsed = parse_gb_identifier(ident)
    assert parsed.sender == XY
    assert parsed.entered == datetime(2026, 7, 8, 0, 30, 5, tzinfo=BEIJING)
    assert parsed.sequence == 1
    assert str(parsed) == ident


def test_sequence_counts_per_second_and_sender() -> None:
    t = datetime(2026, 7, 7, 14, 30, 0, tzinfo=CST)
    issued: list[str] = []
    for _ in range(3):
        issued.append(gb_identifier(XY, t, next_sequence(issued, XY, t)))
    assert [i.rsplit("_", 1)[1] for i in issued] == ["1", "2", "3"]
    assert next_sequence(issued, XY, t + timedelta(seconds=1)) == 1
    assert next_sequence(issued, SenderCode("420600", "417", "000", "00"), t) == 1
    assert next_sequence([*issued, gb_identifier(XY, t, 12)], XY, t) == 13


@pytest.mark.parametrize(
    "text",
    [
        "4206004160000_20260707143000_1",  # 13 digits
        "42060041600000_2026070714300_1",
        "42060041600000_20260707143000_0",  # sequences start at 1
        "42060041600000_20260707143000_",
        "42060041600000-20260707143000-1",
        "42060041600000_20261307143000_1",  # month 13
        "4206004160000a_20260707143000_1",
    ],
)
def test_malformed_identifiers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_gb_identifier(text)


def test_sender_code_parts_are_checked() -> None:
    with pytest.raises(ValueError):
        SenderCode("4206", "416", "000", "00")
    with pytest.raises(ValueError):
        SenderCode("420600", "41", "000", "00")
    with pytest.raises(ValueError):
        SenderCode("000000", "416", "000", "00")
    with pytest.raises(ValueError):
        gb_identifier(XY, datetime(2026, 7, 7), 1)  # naive time: which zone?


# --- colour levels --------------------------------------------------------------------------


def test_colours_map_to_gb_severities() -> None:
    table = {k: (v.roman, v.severity, v.urgency, v.certainty) for k, v in cap.LEVEL_CAP.items()}
    assert table == {
        "blue": ("IV", "Minor", "Future", "Possible"),
        "yellow": ("III", "Moderate", "Expected", "Likely"),
        "orange": ("II", "Severe", "Immediate", "Likely"),
        "red": ("I", "Extreme", "Immediate", "Likely"),
    }
    assert [level_key(x) for x in ("蓝", "黄色", "II", "red", "Orange", "iv")] == [
        "blue",
        "yellow",
        "orange",
        "red",
        "orange",
        "blue",
    ]
    with pytest.raises(ValueError):
        level_key("purple")
    assert cap.level_of_severity("Unknown") is None


# --- the adapter and the round trip ---------------------------------------------------------


def _warning(**over: object) -> CapAlert:
    t = datetime(2026, 7, 7, 14, 30, tzinfo=CST)
    fields: dict[str, object] = dict(
        identifier=gb_identifier(XY, t, 1),
        sender=str(XY),
        sent=t,
        level="橙",
        event_type="11B04",
        texts=[
            WarningText(
                "zh-CN", "暴雨", "暴雨橙色预警", "3小时内降雨量将达50毫米以上。", "停止户外活动。", "樊城区"
            ),
            WarningText(
                "en", "Rainstorm", "Orange rainstorm warning", "50 mm within 3 hours.", None, "Fancheng"
            ),
        ],
        onset=t,
        expires=t + timedelta(hours=6),
        polygons=[[(32.0, 112.1), (32.1, 112.1), (32.1, 112.2), (32.0, 112.1)]],
        geocodes=[ValuePair("GB/T 2260", "420606")],
        response_types=["Avoid"],
    )
    fields.update(over)
    return cap_from_warning(**fields)  # type: ignore[arg-type]


def test_a_warning_exports_as_valid_cap_and_imports_as_the_same() -> None:
    alert = _warning()
    data = to_cap_xml(alert)
    validate_cap(read_xml(data))
    assert read_cap(data) == alert
    zh, en = alert.infos
    assert (zh.severity, zh.urgency, zh.certainty) == ("Severe", "Immediate", "Likely")
    assert zh.categories == ("Met",) and zh.event_codes == (ValuePair("GB/T 35561", "11B04"),)
    assert zh.parameters == (ValuePair("预警级别", "橙色"), ValuePair("level", "II"))
    assert zh.areas[0].description == "樊城区" and en.areas[0].description == "Fancheng"
    assert parse_gb_identifier(alert.identifier).sequence == 1
    assert level_of(alert) == "orange"


def test_update_and_cancel_reference_the_alert_and_drills_are_exercises() -> None:
    first = _warning()
    ref = Reference(first.sender, first.identifier, first.sent)
    cancel = _warning(
        identifier=gb_identifier(XY, first.sent + timedelta(hours=1), 1),
        sent=first.sent + timedelta(hours=1),
        msg_type="Cancel",
        references=[ref],
        exercise=True,
    )
    assert cancel.status == "Exercise" and cancel.references == (ref,)
    assert all(i.response_types == ("AllClear",) for i in cancel.infos)
    data = to_cap_xml(cancel)
    validate_cap(read_xml(data))
    assert read_cap(data) == cancel
    with pytest.raises(ValueError):
        _warning(msg_type="Update")  # no references
    with pytest.raises(ValueError):
        _warning(polygons=[[(32.0, 112.1), (32.1, 112.1), (32.0, 112.2)]])  # not closed
    with pytest.raises(ValueError):
        _warning(texts=[])


def test_event_types_map_to_cap_categories() -> None:
    assert [cap.cap_category(c) for c in ("11B04", "12A01", "21A01", "31A00", "41A00", "99")] == [
        "Met",
        "Geo",
        "Safety",
        "Health",
        "Security",
        "Other",
    ]


# --- Atom feed ------------------------------------------------------------------------------


def test_atom_feed_lists_active_warnings_with_their_cap_links() -> None:
    a = _warning()
    entry = feed_entry(a, "https://console.example/warnings/W-1.cap")
    body = atom_feed(
        [entry],
        feed_id="urn:wuwang:warnings",
        title="襄阳市预警",
        updated=a.sent,
        self_url="https://console.example/warnings/feed.atom",
    )
    ns = {"a": cap.ATOM_NS}
    feed = ET.fromstring(body)
    assert feed.tag == f"{{{cap.ATOM_NS}}}feed"
    assert feed.findtext("a:updated", namespaces=ns) == "2026-07-07T14:30:00+08:00"
    (e,) = feed.findall("a:entry", ns)
    assert e.findtext("a:title", namespaces=ns) == "暴雨橙色预警"
    assert e.findtext("a:id", namespaces=ns) == f"urn:cap:{a.sender}:{a.identifier}"
    link = e.find("a:link", ns)
    assert link is not None and link.attrib == {
        "rel": "alternate",
        "href": "https://console.example/warnings/W-1.cap",
        "type": "application/cap+xml",
    }
    category = e.find("a:category", ns)
    assert category is not None and category.attrib == {"term": "orange", "label": "橙色"}
    empty = ET.fromstring(atom_feed([], feed_id="x", title="t", updated=a.sent, self_url="u"))
    assert empty.findall("a:entry", ns) == []
