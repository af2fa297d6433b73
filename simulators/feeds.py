"""The feed simulator's pure half: a deterministic stream of MQTT messages, no I/O.

``FeedGenerator(city, seed=…, start=…, rate=…)`` yields ``SimEvent``s — topic, payload
bytes, the simulated time — for all five networks and the field teams, exactly the
same bytes for the same (city, seed, start, rate, options) on any machine. The
publisher (simulators/publish.py) only paces and sends them.

How the stream is made (see docs/demo-city.md for the realism notes):

- A simulated clock: message *i* happens at ``start + i × time_scale / rate``. At
  ``time_scale=1`` the simulated day runs at wall speed; tests run a whole day in
  thousands of messages with a large ``time_scale``.
- The ``rate`` is a budget of messages per wall second. City-wide intensities (110
  calls per day, field reports per day, video alerts per camera-hour) take what they
  need at that moment of the day; in the rest of the budget a team that is due speaks
  (position every 5 s when moving, 60 s when idle, status changes at once), and
  otherwise a sensor reads. At the demo's 500 msg/s each of the 3,000 sensors reads
  every ~6 s. Below ``demand_per_sim_second()`` (≈2.5 msg per simulated second with
  the defaults) calls, reports and alerts are thinned alike and team positions fall
  behind; the CLI says so.
- Sensors: a baseline per device plus AR(1) noise, inside the normal band; now and
  then a real anomaly ramps a device across its alarm threshold and back. A fire
  (smoke or heat anomaly) can echo as a 110 fire call and a camera's fire_smoke alert
  in the same grid cell a little later, as a real one would.
- 110 calls follow a daily rhythm (trough at 04:00, peak at 20:00–21:00) with a
  category mix that shifts by hour (traffic at rush hour, disputes in the evening).
- Teams move along synthetic streets (simulators/streets.py — not real roads) through
  available → dispatched → en_route → on_scene → returning → available, and
  occasionally off_duty; every team message carries a per-team ``seq``.
- ``bad_fraction`` of the messages are deliberately unreadable, of many kinds
  (``BAD_KINDS``); each is rejected by ``wuwang.contract.parse_message``.
- Ids: unique per source for a (seed, start) — a run token made of the start time and
  the seed prefixes every id, so a second run does not collide with the first (the
  ingest stores a repeated id once), and the same run replayed is idempotent.
- A few devices have no clock and leave ``ts`` out. Every good message carries the
  extra field ``"sim": true`` (unknown fields are kept by the contract), so simulated
  traffic can be told apart in the database.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from simulators.streets import Route, StreetNetwork, build_street_networks
from wuwang.city import City, District, GridCell, PointSampler, Team
from wuwang.contract import (
    FEEDS,
    MAX_PAYLOAD_BYTES,
    CallCategory,
    Feed,
    Network,
    TeamStatus,
    encode,
    team_topic,
    wuwang_topic,
)
from wuwang.geo import offset_by_metres

#: China Standard Time: no daylight saving, so a fixed offset is exact.
CST = timezone(timedelta(hours=8), "CST")

#: The 110 system's source id (deploy/mosquitto/passwd has the account).
SYS110 = "sys110"

#: Alarm thresholds the simulator aims anomalies across (the ingest owns the real ones).
NORMAL_RANGE = {
    "smoke": (0.0, 2.0),  # %/m obscuration; alarm > 10
    "gas": (0.0, 5.0),  # %LEL; alarm > 20
    "co": (0.0, 10.0),  # ppm; alarm > 50
    "water_level": (0.2, 1.0),  # m above the gauge datum; warning level 3.0
    "temperature": (5.0, 35.0),  # °C ambient; fire > 60
}
ALARM_THRESHOLD = {"smoke": 10.0, "gas": 20.0, "co": 50.0, "water_level": 3.0, "temperature": 60.0}
_ANOMALY_PEAK = {  # (low, high) of an anomaly's peak value
    "smoke": (12.0, 35.0),
    "gas": (25.0, 80.0),
    "co": (60.0, 400.0),
    "water_level": (3.1, 4.5),
    "temperature": (65.0, 250.0),
}
_ANOMALY_MINUTES = {  # (low, high) duration of an anomaly
    "smoke": (3, 15), "gas": (5, 30), "co": (10, 40), "water_level": (120, 480), "temperature": (5, 20),
}
_NOISE_SIGMA = {"smoke": 0.08, "gas": 0.3, "co": 0.8, "water_level": 0.01, "temperature": 0.3}

# Xiangyang's monthly mean air temperature (°C), January first: the ambient baseline.
_MONTHLY_MEAN_C = (2.5, 5.0, 10.0, 16.0, 21.0, 25.5, 28.0, 27.0, 22.5, 17.0, 10.5, 4.5)

# Hourly profiles (00:00 … 23:00), relative; normalised to mean 1 below.
_CALL_RHYTHM = (0.75, 0.6, 0.45, 0.35, 0.3, 0.35, 0.55, 0.85, 1.0, 1.05, 1.05, 1.1,
                1.1, 1.05, 1.05, 1.05, 1.1, 1.2, 1.35, 1.5, 1.6, 1.55, 1.35, 1.05)
_REPORT_RHYTHM = (0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.2, 0.8, 1.9, 2.2, 2.1, 1.6,
                  0.9, 1.2, 1.9, 2.1, 2.0, 1.5, 0.8, 0.5, 0.4, 0.3, 0.15, 0.08)
_VIDEO_RHYTHM = (0.8, 0.75, 0.7, 0.7, 0.7, 0.75, 0.85, 1.05, 1.15, 1.1, 1.05, 1.05,
                 1.1, 1.05, 1.05, 1.1, 1.15, 1.25, 1.3, 1.3, 1.25, 1.1, 0.95, 0.85)


def _normalised(profile: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(profile) / len(profile)
    return tuple(p / mean for p in profile)


CALL_RHYTHM = _normalised(_CALL_RHYTHM)
REPORT_RHYTHM = _normalised(_REPORT_RHYTHM)
VIDEO_RHYTHM = _normalised(_VIDEO_RHYTHM)


def rhythm(profile: tuple[float, ...], t: datetime) -> float:
    """The profile at a local time, linearly interpolated between whole hours."""
    local = t.astimezone(CST)
    h = local.hour + local.minute / 60 + local.second / 3600
    i = int(h) % 24
    f = h - int(h)
    return profile[i] * (1 - f) + profile[(i + 1) % 24] * f


@dataclass(frozen=True)
class FeedMix:
    """City-wide intensities. Defaults are of the order of a city of 5 M people."""

    calls_per_day: float = 4000.0  # 110 calls (≈0.8 per 1,000 people per day)
    # Grid workers' field reports, mostly in office hours: Beijing Dongcheng files about
    # 3,000 cases a month for 0.7 M people; scaled to 5.3 M people, ≈800 a day.
    reports_per_day: float = 800.0
    video_alerts_per_camera_hour: float = 0.5  # analytics alerts; ≈13 % reach 0.8 confidence
    dispatches_per_team_day: float = 6.0  # team call-outs (simulated; not command's orders)
    anomalies_per_hour: float = 12.0  # real sensor anomalies city-wide, whatever the rate
    fire_call_echo: float = 0.6  # a fire anomaly is also phoned in to 110 …
    fire_video_echo: float = 0.5  # … and seen by a camera in the same grid cell
    clockless_fraction: float = 0.04  # devices without a clock: no ts
    gps_fraction: float = 0.25  # devices that send their own lat/lon
    position_moving_s: float = 5.0
    position_idle_s: float = 60.0
    position_off_duty_s: float = 300.0
    event_share_cap: float = 0.7  # calls + reports + video take at most this share of the budget
    busy: float = 1.0  # multiplies calls, reports, video and dispatches (a busy day)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One message of the stream."""

    index: int  # position in the stream (the publisher paces by it)
    at: float  # simulated seconds since start
    topic: str
    payload: bytes
    feed: Feed
    source: str  # the contract's source key: "<network>/<source_id>" or "team/<id>"
    msg_id: str | None  # None for a deliberately bad message
    bad: str | None  # which kind of defect, None for a good message


# --- deliberately bad messages -------------------------------------------------------

BAD_KINDS = (
    "bad_json", "not_utf8", "non_object", "missing_field", "wrong_type", "lat_out_of_range",
    "unknown_network", "oversized", "bad_ts", "bad_enum", "bad_source_id", "empty_payload", "nan_value",
)

# (field, replacement) that strict typing refuses: numbers as strings, strings as numbers.
_WRONG_TYPES: dict[Feed, tuple[tuple[str, Any], ...]] = {
    Feed.SENSOR: (("value", "12.5"), ("unit", 5), ("device_id", 1001), ("value", True)),
    Feed.VIDEO: (("confidence", "0.93"), ("lat", "32.05"), ("bbox", "10,20,30,40")),
    Feed.CALL: (("lat", "32.05"), ("caller", 13800000000), ("priority", "1"), ("description", ["火"])),
    Feed.REPORT: (("lon", "112.1"), ("description", 42), ("category", {"code": "x"})),
    Feed.POSITION: (("lat", "32.05"), ("seq", "7"), ("speed", "fast")),
    Feed.STATUS: (("status", 3), ("seq", 1.5), ("incident_id", 12)),
}
# Values outside an enum, a pattern or a range.
_BAD_VALUES: dict[Feed, tuple[tuple[str, Any], ...]] = {
    Feed.SENSOR: (("kind", "Smoke Detector!"), ("unit", "x" * 40), ("device_id", "")),
    Feed.VIDEO: (("confidence", 1.7), ("confidence", -0.2), ("event", "FIRE!!"), ("bbox", [1.0, 2.0])),
    Feed.CALL: (("category", "arson"), ("priority", 7), ("caller", "1" * 80)),
    Feed.REPORT: (("category", ""), ("reporter", "r" * 80)),
    Feed.POSITION: (("speed", -3.0), ("heading", 400.0), ("seq", -1)),
    Feed.STATUS: (("status", "busy"), ("seq", -5), ("status", "AVAILABLE")),
}
_BAD_TS = ("2024-13-45T99:00:00+08:00", "yesterday", "2024-05-01", "2024-05-01T12:00:00", 1714550400)


def make_bad(
    rng: random.Random, kind: str, feed: Feed, topic: str, payload: dict[str, Any]
) -> tuple[str, str, bytes]:
    """(kind actually used, topic, bytes) of a message ``parse_message`` must refuse.

    Kinds that do not apply to a feed (a status has no coordinates) fall back to one
    that does, so the requested fraction of bad messages is kept.
    """
    body = dict(payload)
    if kind == "lat_out_of_range" and feed == Feed.STATUS:
        kind = "bad_enum"
    if kind == "nan_value" and feed != Feed.SENSOR:
        kind = "bad_json"
    if kind == "bad_json":
        raw = encode(body)
        return kind, topic, raw[: max(1, len(raw) // 2)]  # cut mid-object: never valid JSON
    if kind == "not_utf8":
        return kind, topic, b"\xff\xfe" + encode(body)[2:]
    if kind == "non_object":
        pairs = orjson.dumps(list(body.items()))  # the object as an array of pairs
        return kind, topic, rng.choice((b"[1,2,3]", pairs, b'"hello"', b"42", b"null"))
    if kind == "empty_payload":
        return kind, topic, b""
    if kind == "missing_field":
        del body[rng.choice(FEEDS[feed].required_fields)]
    elif kind == "wrong_type":
        name, value = rng.choice(_WRONG_TYPES[feed])
        body[name] = value
    elif kind == "bad_enum":
        name, value = rng.choice(_BAD_VALUES[feed])
        body[name] = value
    elif kind == "lat_out_of_range":
        body["lat"] = rng.choice((91.5, 123.4, -95.0, 400.0))
        body["lon"] = body.get("lon", 112.1)
        if rng.random() < 0.3:
            body["lat"], body["lon"] = 32.0, rng.choice((181.0, -200.0, 360.0))
    elif kind == "bad_ts":
        body["ts"] = rng.choice(_BAD_TS)
    elif kind == "oversized":
        body["padding"] = "x" * (MAX_PAYLOAD_BYTES + rng.randint(1, 4096))
    elif kind == "nan_value":
        body["value"] = 0.123456789
        token = rng.choice((b"NaN", b"Infinity", b"-Infinity"))  # JSON has no such numbers
        return kind, topic, encode(body).replace(b"0.123456789", token)
    elif kind == "unknown_network":
        parts = topic.split("/")
        if parts[0] == "wuwang":
            parts[2] = rng.choice(("fire", "traffic", "metro", "Patrol", "videos"))
        else:
            parts[3] = rng.choice(("alarm", "location", "Status"))
        topic = "/".join(parts)
    elif kind == "bad_source_id":
        parts = topic.split("/")
        i = 4 if parts[0] == "wuwang" else 2
        sid = parts[i]
        parts[i] = rng.choice((f"{sid} 01", f"设备{sid}", "x" * 65, f"{sid}/extra", f"{sid}!"))
        topic = "/".join(parts)
    else:
        raise ValueError(f"unknown bad kind {kind!r}")
    return kind, topic, encode(body)


# --- words for calls and reports -------------------------------------------------------

_DIRECTIONS = ("东", "南", "西", "北", "东北", "西南", "东南", "西北")
_COLORS = ("黑色", "白色", "红色", "蓝色", "灰色", "黄色")
_SHOPS = ("超市", "烧烤店", "KTV", "网吧", "饭店", "便利店", "药店", "手机店", "理发店", "茶楼")
_REASONS = ("停车位", "噪音", "楼上漏水", "宠物", "装修", "买卖商品", "退货", "琐事")
_WHO = ("妻子", "丈夫", "老人", "孩子")
_VILLAGES = ("王家", "李家", "张庄", "刘湾", "新集", "黄龙", "石桥", "杨树", "柳林", "大营", "高庙", "田畈")
_PHONE_PREFIXES = (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 158, 159,
                   176, 177, 180, 181, 182, 186, 187, 188, 189, 199)

# category → (template, priority 1..4); placeholders filled by _fill().
_CALL_TEMPLATES: dict[CallCategory, tuple[tuple[str, int], ...]] = {
    CallCategory.CRIMINAL: (
        ("{place}一带有人撬盗电动车，嫌疑人{count}人，往{dir}方向逃离", 2),
        ("手机在{shop}被盗，报警人要求调取监控", 3),
        ("有人在{road}持刀抢劫，嫌疑人身穿{color}上衣，往{dir}方向跑了", 1),
        ("家中被盗，门锁被撬，丢失现金及首饰", 3),
        ("接到电信诈骗电话，被骗{money}元，对方自称网购客服", 3),
        ("{road}一商铺玻璃被砸，店内物品被盗", 2),
    ),
    CallCategory.PUBLIC_ORDER: (
        ("{shop}门口有人酒后滋事，情绪激动", 2),
        ("{road}有人聚众斗殴，约{count}人，有人持棍棒", 1),
        ("广场舞音响声音过大，影响休息", 4),
        ("{place}小区有人深夜喧哗扰民", 4),
        ("有人在{road}燃放烟花爆竹", 3),
    ),
    CallCategory.DISPUTE: (
        ("邻里纠纷，双方因{reason}发生争吵，情绪激动", 3),
        ("顾客与{shop}老板因{reason}发生纠纷", 3),
        ("家庭纠纷，{who}被打，请求出警", 2),
        ("出租车司机与乘客因车费发生纠纷", 4),
        ("工地讨薪纠纷，约{count}名工人聚集", 2),
    ),
    CallCategory.TRAFFIC: (
        ("{road}与{road2}路口两车追尾，无人员受伤，占用车道", 3),
        ("{road}一电动车与小轿车相撞，一人受伤倒地", 2),
        ("{road}有车辆逆行，险些发生事故", 3),
        ("{road}发生多车相撞事故，有人被困车内", 1),
        ("{road}车辆抛锚，造成严重拥堵", 4),
        ("疑似酒驾车辆在{road}蛇形行驶，车牌{plate}", 2),
    ),
    CallCategory.FIRE: (
        ("{place}小区{b}栋{f}楼冒浓烟，疑似厨房起火", 1),
        ("{road}一门面房起火，火势较大", 1),
        ("{road}路边电动车起火", 2),
        ("{place}一带荒草起火，火势蔓延", 2),
        ("闻到浓烈煤气味，担心泄漏", 2),
    ),
    CallCategory.MEDICAL: (
        ("老人在{road}晕倒，呼吸微弱，需要救护车", 1),
        ("有人突发疾病倒地，意识不清", 1),
        ("{place}小区有人从高处坠落受伤", 1),
        ("孕妇即将分娩，请求协助送医", 2),
    ),
    CallCategory.RESCUE: (
        ("{place}小区有人被困电梯，共{count}人", 2),
        ("孩子在{place}走失，{age}岁，穿{color}衣服", 2),
        ("汉江边有人落水，正在呼救", 1),
        ("老人走失，患有阿尔茨海默症", 2),
        ("钥匙锁在屋内，家中有婴儿无人照看", 2),
        ("暴雨导致{road}下穿通道积水，有车辆被困", 1),
    ),
    CallCategory.OTHER: (
        ("咨询办理户籍相关手续", 4),
        ("无声电话，回拨无人接听", 4),
        ("举报{place}一带有人无证经营", 4),
        ("捡到钱包一个，内有身份证件，请求联系失主", 4),
        ("误拨，报警人称无警情", 4),
    ),
}
# Share of 110 calls by category (public order and disputes dominate, as in Chinese cities).
_CALL_MIX: dict[CallCategory, float] = {
    CallCategory.PUBLIC_ORDER: 0.22, CallCategory.DISPUTE: 0.20, CallCategory.TRAFFIC: 0.18,
    CallCategory.CRIMINAL: 0.12, CallCategory.RESCUE: 0.08, CallCategory.MEDICAL: 0.05,
    CallCategory.FIRE: 0.04, CallCategory.OTHER: 0.11,
}


def call_category_weights(hour: int) -> list[float]:
    """The category mix at an hour of the day (weights in ``CallCategory`` order)."""
    out = []
    for cat in CallCategory:
        w = _CALL_MIX[cat]
        if cat == CallCategory.TRAFFIC:
            w *= 1.7 if hour in (7, 8, 17, 18) else 0.5 if hour < 6 else 1.0
        elif cat in (CallCategory.DISPUTE, CallCategory.PUBLIC_ORDER):
            w *= 1.4 if hour >= 19 or hour == 0 else 0.7 if 6 <= hour < 11 else 1.0
        elif cat == CallCategory.CRIMINAL:
            w *= 1.3 if hour < 5 else 1.0
        elif cat == CallCategory.FIRE:
            w *= 1.4 if hour in (11, 12, 17, 18) else 1.0
        out.append(w)
    return out


# Field reports by grid workers: (ascii code, Chinese name, weight, details).
REPORT_CATEGORIES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("street_vending", "占道经营", 0.18, ("流动摊贩在人行道摆摊，影响通行", "店铺将商品摆放至店外人行道")),
    ("material_piling", "乱堆物料", 0.12, ("建筑垃圾堆放在路边未清运", "楼道内堆放杂物")),
    ("missing_manhole_cover", "井盖缺失", 0.05, ("人行道井盖缺失，已设置临时警示", "雨水井盖破损下陷")),
    ("illegal_parking", "违章停车", 0.16, ("车辆长时间占用盲道停放", "小区门口车辆乱停堵塞出入口")),
    ("noise_nuisance", "噪音扰民", 0.08, ("夜间施工噪音扰民", "商铺外放音响声音过大")),
    ("fire_lane_blocked", "消防通道堵塞", 0.10, ("消防通道被私家车堵塞", "消防通道内堆放杂物")),
    ("ebike_charging", "电动车违规充电", 0.10, ("居民从楼上飞线给电动车充电", "电动车停放在楼道内充电")),
    ("garbage_overflow", "垃圾满溢", 0.09, ("垃圾桶满溢未及时清运", "垃圾中转点异味严重")),
    ("illegal_construction", "违章搭建", 0.05, ("楼顶私自搭建彩钢棚", "一楼住户私自扩建院墙")),
    ("damaged_facility", "公共设施损坏", 0.07, ("路灯不亮", "健身器材损坏存在安全隐患")),
)

# Video analytics events: (event, base weight, night factor, evening factor).
_VIDEO_EVENTS: tuple[tuple[str, float, float, float], ...] = (
    ("crowd", 0.20, 0.3, 1.6),
    ("loitering", 0.20, 1.8, 1.0),
    ("intrusion", 0.14, 2.2, 0.9),
    ("traffic_accident", 0.12, 0.6, 1.2),
    ("fall", 0.10, 0.7, 1.0),
    ("fight", 0.08, 1.4, 1.5),
    ("fire_smoke", 0.16, 1.0, 1.0),  # many are steam, cooking smoke or headlights: low confidence
)


# --- per-source state ------------------------------------------------------------------


@dataclass
class _DeviceState:
    index: int
    baseline: float
    noise: float = 0.0
    clockless: bool = False
    gps: bool = False
    last_read: float = 0.0  # simulated seconds of the previous reading
    anomaly_start: float = -1.0
    anomaly_end: float = -1.0
    anomaly_peak: float = 0.0


@dataclass
class _TeamState:
    team: Team
    streets: StreetNetwork
    status: TeamStatus = TeamStatus.AVAILABLE
    next_change: float = math.inf  # simulated seconds of the next status change
    next_position: float = 0.0
    route: Route | None = None
    route_start: float = 0.0
    speed: float = 0.0
    scene: tuple[float, float] | None = None
    incident_id: str | None = None
    stand_down_next: bool = False  # the next change out of "available" is off_duty, not a call-out
    seq: int = 0
    pending: deque[tuple[float, Feed, dict[str, Any]]] = field(default_factory=deque)


_ON_SCENE_MINUTES = {
    "fire": (20, 90), "medical": (10, 30), "police": (15, 60), "hazmat": (60, 180),
    "water_rescue": (30, 120), "comprehensive": (60, 240),
}


class FeedGenerator:
    """Deterministic stream of feed messages for a city, a seed and a simulated clock."""

    def __init__(
        self,
        city: City,
        *,
        seed: int,
        start: datetime,
        rate: float,
        bad_fraction: float = 0.0,
        time_scale: float = 1.0,
        mix: FeedMix | None = None,
    ) -> None:
        if rate <= 0 or time_scale <= 0:
            raise ValueError("rate and time_scale must be positive")
        if not 0.0 <= bad_fraction <= 1.0:
            raise ValueError("bad_fraction must be within [0, 1]")
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.city = city
        self.seed = seed
        self.start = start.astimezone(CST)
        self.rate = rate
        self.time_scale = time_scale
        self.bad_fraction = bad_fraction
        self.mix = mix or FeedMix()
        self.dt = time_scale / rate  # simulated seconds per message
        self.run = f"{_base36(abs(int(self.start.timestamp())))}s{seed}"
        self._index = 0
        self._rng = random.Random(f"feeds:{seed}")
        self._sampler = PointSampler(city.districts, city.grid_cells, city.grid_deg)
        self._districts = {d.adcode: d for d in city.districts}
        self._counters: dict[str, int] = {}
        self._incidents = 0

        rng = random.Random(f"feeds-setup:{seed}")
        self._devices = city.devices
        self._device_state = [self._new_device_state(i, rng) for i in range(len(city.devices))]
        self._anomaly_per_device_s = self.mix.anomalies_per_hour / 3600 / max(len(city.devices), 1)
        self._cameras = city.cameras
        self._cameras_by_cell: dict[str, list[int]] = {}
        for i, cam in enumerate(city.cameras):
            self._cameras_by_cell.setdefault(cam.grid_cell_id, []).append(i)
        # Grid workers: one account per cell; reports weighted by people, not by area.
        self._report_cells, self._report_cum = _cumulative(
            city.grid_cells, lambda c: max(c.households, 1) ** 0.8
        )
        streets = build_street_networks(city.districts)
        self._teams = [_TeamState(t, streets[t.district_adcode]) for t in city.teams]
        self._team_heap: list[tuple[float, int]] = []
        for i, ts in enumerate(self._teams):
            # Stagger first reports so 60 teams do not all speak in the first second.
            ts.next_position = rng.uniform(0, self.mix.position_idle_s)
            self._schedule_next_dispatch(ts, 0.0, rng)
            heapq.heappush(self._team_heap, (min(ts.next_position, ts.next_change), i))
        self._echoes: list[tuple[float, int, Feed, str, dict[str, Any]]] = []
        self._echo_n = 0

    # -- public ---------------------------------------------------------------------

    def events(self, limit: int | None = None) -> Iterator[SimEvent]:
        """The stream, endless unless ``limit`` (a position in the whole stream). The
        generator has state: a second call goes on where the first one stopped."""
        while limit is None or self._index < limit:
            index = self._index
            self._index += 1
            yield self._next(index)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for ev in self.events():
            yield ev.topic, ev.payload

    def demand_per_sim_second(self) -> float:
        """Messages per simulated second the mix needs on an average day, sensors aside.

        When ``rate / time_scale`` is below this, calls, reports, alerts and positions
        are thinned in proportion and no sensor reading is left (see the module notes).
        """
        m = self.mix
        per_day = m.calls_per_day + m.reports_per_day
        per_s = per_day / 86400 * m.busy + m.video_alerts_per_camera_hour * len(self._cameras) / 3600 * m.busy
        # A call-out keeps a team on the road for roughly 20 minutes (there and back).
        moving = min(1.0, m.dispatches_per_team_day * m.busy * 1200 / 86400)
        positions = len(self._teams) * (moving / m.position_moving_s + (1 - moving) / m.position_idle_s)
        return per_s + positions

    def sim_time(self, at: float) -> datetime:
        return self.start + timedelta(seconds=at)

    # -- the slot machine -------------------------------------------------------------

    def _next(self, index: int) -> SimEvent:
        at = index * self.dt
        rng = self._rng
        made: tuple[Feed, str, str, dict[str, Any]]
        if self._echoes and self._echoes[0][0] <= at:
            _, _, feed, topic, payload = heapq.heappop(self._echoes)
            made = (feed, topic, self._source_of(topic), payload)
        else:
            made = self._slot(at)
        feed, topic, source, payload = made
        if self.bad_fraction > 0 and rng.random() < self.bad_fraction:
            kind, btopic, raw = make_bad(rng, rng.choice(BAD_KINDS), feed, topic, payload)
            return SimEvent(index, at, btopic, raw, feed, source, None, kind)
        return SimEvent(index, at, topic, encode(payload), feed, source, str(payload["id"]), None)

    def _slot(self, at: float) -> tuple[Feed, str, str, dict[str, Any]]:
        """One message slot: a Poisson draw for calls, reports and video alerts at their
        intensity for this time of day; the rest of the budget goes to a team that is due
        for a message, else to a sensor reading."""
        now = self.sim_time(at)
        m = self.mix
        p_call = m.calls_per_day / 86400 * rhythm(CALL_RHYTHM, now) * m.busy * self.dt
        p_report = m.reports_per_day / 86400 * rhythm(REPORT_RHYTHM, now) * m.busy * self.dt
        per_s = m.video_alerts_per_camera_hour * len(self._cameras) / 3600
        p_video = per_s * rhythm(VIDEO_RHYTHM, now) * m.busy * self.dt
        total = p_call + p_report + p_video
        if total > m.event_share_cap:  # too small a budget: thin them alike, keep room for teams
            f = m.event_share_cap / total
            p_call, p_report, p_video = p_call * f, p_report * f, p_video * f
        u = self._rng.random()
        if u < p_call:
            return self._call(at, now)
        if u < p_call + p_report:
            return self._report(at, now)
        if u < p_call + p_report + p_video:
            return self._video(at, now, None, None)
        if self._team_heap and (self._team_heap[0][0] <= at or not self._devices):
            return self._team_message(at)
        if self._devices:
            return self._sensor(at, now)
        return self._call(at, now)  # a city without sensors or teams

    # -- ids and envelopes --------------------------------------------------------------

    def _next_id(self, source: str) -> str:
        n = self._counters.get(source, 0) + 1
        self._counters[source] = n
        return f"{self.run}-{n}"

    @staticmethod
    def _source_of(topic: str) -> str:
        parts = topic.split("/")
        return f"team/{parts[2]}" if parts[0] == "teams" else f"{parts[2]}/{parts[4]}"

    @staticmethod
    def _ts(t: datetime) -> str:
        return t.isoformat(timespec="milliseconds")

    # -- sensors ------------------------------------------------------------------------

    def _new_device_state(self, i: int, rng: random.Random) -> _DeviceState:
        dev = self._devices[i]
        lo, hi = NORMAL_RANGE[dev.kind]
        if dev.kind == "temperature":
            baseline = rng.uniform(-1.5, 3.0)  # offset from ambient (enclosures run warm)
        elif dev.kind == "water_level":
            baseline = rng.uniform(0.3, 0.8)
        elif dev.kind == "co" and dev.venue_id is not None:
            baseline = rng.uniform(2.0, 6.0)  # garages and boiler rooms
        else:
            baseline = rng.uniform(lo, lo + (hi - lo) * 0.4)
        return _DeviceState(
            index=i,
            baseline=baseline,
            clockless=rng.random() < self.mix.clockless_fraction,
            gps=rng.random() < self.mix.gps_fraction,
        )

    def _ambient(self, now: datetime) -> float:
        local = now.astimezone(CST)
        month = _MONTHLY_MEAN_C[local.month - 1]
        h = local.hour + local.minute / 60
        return month + 4.0 * math.cos((h - 15.0) / 24.0 * 2 * math.pi)  # warmest at 15:00

    def _sensor(self, at: float, now: datetime) -> tuple[Feed, str, str, dict[str, Any]]:
        rng = self._rng
        i = rng.randrange(len(self._devices))
        dev, st = self._devices[i], self._device_state[i]
        kind = dev.kind
        lo, hi = NORMAL_RANGE[kind]
        st.noise = 0.85 * st.noise + rng.gauss(0.0, _NOISE_SIGMA[kind])
        if kind == "temperature":
            value = self._ambient(now) + st.baseline + st.noise
        elif kind == "water_level":
            value = st.baseline + 0.08 * math.sin(at / 43200 * math.pi + i) + st.noise
        else:
            value = st.baseline + st.noise
        value = min(hi, max(lo, value))

        # Anomalies arrive per device-hour, not per reading: the chance grows with the
        # time since this device's last reading, so the rate setting does not change it.
        elapsed, st.last_read = at - st.last_read, at
        chance = 1.0 - math.exp(-self._anomaly_per_device_s * elapsed)
        if st.anomaly_end < at and rng.random() < chance:
            low, high = _ANOMALY_MINUTES[kind]
            st.anomaly_start, st.anomaly_end = at, at + rng.uniform(low, high) * 60
            plo, phi = _ANOMALY_PEAK[kind]
            st.anomaly_peak = rng.uniform(plo, phi * (1.6 if dev.site == "forest_thermal" else 1.0))
            if kind in ("smoke", "temperature"):
                self._fire_echoes(at, dev.lat, dev.lon, dev.grid_cell_id)
        if st.anomaly_start <= at <= st.anomaly_end:
            # Ramp up over the first 30 %, hold, fall back over the last 20 %.
            f = (at - st.anomaly_start) / max(st.anomaly_end - st.anomaly_start, 1e-9)
            shape = min(1.0, f / 0.3) if f < 0.8 else max(0.0, (1.0 - f) / 0.2)
            value = value + shape * (st.anomaly_peak - value)

        source = f"{dev.network}/{dev.id}"
        payload: dict[str, Any] = {
            "id": self._next_id(source),
            "device_id": dev.id,
            "kind": kind,
            "value": round(value, 3 if kind == "water_level" else 2),
            "unit": dev.unit,
        }
        if not st.clockless:
            payload["ts"] = self._ts(now)
        if st.gps:
            payload["lat"], payload["lon"] = dev.lat, dev.lon
        payload["sim"] = True
        return Feed.SENSOR, wuwang_topic(dev.network, Feed.SENSOR, dev.id), source, payload

    def _fire_echoes(self, at: float, lat: float, lon: float, cell_id: str) -> None:
        """A real fire is seen and phoned in: queue a 110 call and a camera alert."""
        rng = self._rng
        if rng.random() < self.mix.fire_call_echo:
            call_at = at + rng.uniform(60, 300)
            _, topic, _, payload = self._call(call_at, self.sim_time(call_at), fire_at=(lat, lon, cell_id))
            self._push_echo(call_at, Feed.CALL, topic, payload)
        cams = self._cameras_by_cell.get(cell_id)
        if cams and rng.random() < self.mix.fire_video_echo:
            video_at = at + rng.uniform(10, 120)
            cam = rng.choice(cams)
            _, topic, _, payload = self._video(video_at, self.sim_time(video_at), cam, "fire_smoke")
            self._push_echo(video_at, Feed.VIDEO, topic, payload)

    def _push_echo(self, at: float, feed: Feed, topic: str, payload: dict[str, Any]) -> None:
        self._echo_n += 1
        heapq.heappush(self._echoes, (at, self._echo_n, feed, topic, payload))

    # -- video --------------------------------------------------------------------------

    def _video(
        self, at: float, now: datetime, cam_index: int | None, event: str | None
    ) -> tuple[Feed, str, str, dict[str, Any]]:
        rng = self._rng
        i = rng.randrange(len(self._cameras)) if cam_index is None else cam_index
        cam = self._cameras[i]
        hour = now.astimezone(CST).hour
        if event is None:
            night, evening = hour < 6 or hour >= 23, 18 <= hour < 23
            weights = [w * (n if night else e if evening else 1.0) for _, w, n, e in _VIDEO_EVENTS]
            if cam.site in ("checkpoint", "intersection"):
                weights[3] *= 3.0  # traffic_accident at road cameras
            event = rng.choices([e for e, *_ in _VIDEO_EVENTS], weights=weights)[0]
            real = rng.random() < 0.12
        else:
            real = True
        # Analytics report many weak detections and a few strong ones (the real events).
        confidence = rng.uniform(0.85, 0.99) if real else 0.3 + 0.55 * rng.betavariate(4, 3)
        source = f"{cam.network}/{cam.id}"
        msg_id = self._next_id(source)
        w, h = rng.uniform(60, 600), rng.uniform(80, 500)
        x, y = rng.uniform(0, 1920 - w), rng.uniform(0, 1080 - h)
        payload: dict[str, Any] = {
            "id": msg_id,
            "ts": self._ts(now),
            "camera_id": cam.id,
            "event": event,
            "confidence": round(confidence, 3),
            "lat": cam.lat,
            "lon": cam.lon,
            "snapshot_url": f"https://vms.example.invalid/snapshots/{cam.id}/{msg_id}.jpg",
            "bbox": [round(x, 1), round(y, 1), round(w, 1), round(h, 1)],
            "sim": True,
        }
        return Feed.VIDEO, wuwang_topic(cam.network, Feed.VIDEO, cam.id), source, payload

    # -- 110 calls ----------------------------------------------------------------------

    def _call(
        self, at: float, now: datetime, fire_at: tuple[float, float, str] | None = None
    ) -> tuple[Feed, str, str, dict[str, Any]]:
        rng = self._rng
        if fire_at is None:
            lat, lon, cell = self._sampler.point(rng, 1.1)  # people call from where people are
            weights = call_category_weights(now.astimezone(CST).hour)
            category = rng.choices(list(CallCategory), weights=weights)[0]
            template, priority = rng.choice(_CALL_TEMPLATES[category])
        else:
            lat, lon, cell = self._sampler.near(rng, fire_at[0], fire_at[1], 80.0)  # the caller saw it nearby
            category = CallCategory.FIRE
            template, priority = rng.choice(_CALL_TEMPLATES[category][:3])
        district = self._districts[cell.district_adcode]
        source = f"{Network.POLICE}/{SYS110}"
        n = self._counters.get(source, 0) + 1
        payload: dict[str, Any] = {
            "id": self._next_id(source),
            "ts": self._ts(now),
            "call_id": f"JQ{now.astimezone(CST):%Y%m%d}-{self.run}-{n:06d}",
            "category": str(category),
            "lat": lat,
            "lon": lon,
            "address": self._address(rng, district, cell, category),
            "description": _fill(rng, template, district),
            "caller": f"{rng.choice(_PHONE_PREFIXES)}****{rng.randrange(10000):04d}",
            "priority": priority,
            "sim": True,
        }
        return Feed.CALL, wuwang_topic(Network.POLICE, Feed.CALL, SYS110), source, payload

    @staticmethod
    def _address(rng: random.Random, d: District, cell: GridCell, category: CallCategory | None) -> str:
        info = d.info
        if cell.households < 1500:  # countryside: township, village, group
            return f"{d.name}{rng.choice(info.places)}镇{rng.choice(_VILLAGES)}村{rng.randint(1, 12)}组"
        road = rng.choice(info.roads)
        if category == CallCategory.TRAFFIC or rng.random() < 0.15:
            other = rng.choice([r for r in info.roads if r != road] or [road])
            return f"{d.name}{road}与{other}交叉口"
        if rng.random() < 0.5:
            return f"{d.name}{rng.choice(info.places)}小区{rng.randint(1, 36)}栋{rng.randint(1, 6)}单元"
        return f"{d.name}{road}{rng.randint(1, 399)}号"

    # -- grid workers' reports -------------------------------------------------------------

    def _report(self, at: float, now: datetime) -> tuple[Feed, str, str, dict[str, Any]]:
        rng = self._rng
        cell = self._report_cells[_pick(rng, self._report_cum)]
        lat, lon = self._sampler.in_cell(rng, cell)
        code, name, _, details = rng.choices(REPORT_CATEGORIES, weights=[c[2] for c in REPORT_CATEGORIES])[0]
        district = self._districts[cell.district_adcode]
        reporter = cell.grid_worker_id
        source = f"{Network.COMMUNITY}/{reporter}"
        msg_id = self._next_id(source)
        payload: dict[str, Any] = {
            "id": msg_id,
            "ts": self._ts(now),
            "reporter": reporter,
            "category": code,
            "description": f"{name}：{rng.choice(details)}，{self._address(rng, district, cell, None)}",
            "lat": lat,
            "lon": lon,
            "category_name": name,
            "grid_cell_name": cell.name,
            "sim": True,
        }
        if rng.random() < 0.7:
            payload["photo_url"] = f"https://oss.example.invalid/wuwang/reports/{reporter}/{msg_id}.jpg"
        return Feed.REPORT, wuwang_topic(Network.COMMUNITY, Feed.REPORT, reporter), source, payload

    # -- teams ------------------------------------------------------------------------------

    def _schedule_next_dispatch(self, ts: _TeamState, at: float, rng: random.Random) -> None:
        per_day = self.mix.dispatches_per_team_day * self.mix.busy
        if ts.team.team_type in ("hazmat", "water_rescue", "comprehensive"):
            per_day /= 4  # specialist teams go out less often
        rate = per_day / 86400 * rhythm(CALL_RHYTHM, self.sim_time(at))
        off_rate = 0.3 / 86400  # a team stands down about every third day
        wait = rng.expovariate(rate + off_rate) if rate + off_rate > 0 else math.inf
        ts.next_change = at + wait
        ts.incident_id = None
        ts.scene = None
        # Competing exponentials: which of the two comes first is decided now.
        ts.stand_down_next = rng.random() >= rate / (rate + off_rate)

    def _team_message(self, at: float) -> tuple[Feed, str, str, dict[str, Any]]:
        _, i = heapq.heappop(self._team_heap)
        ts = self._teams[i]
        self._advance(ts, at)
        if ts.pending:
            t_change, feed, body = ts.pending.popleft()
            ts_at = t_change
        else:
            feed, ts_at = Feed.POSITION, at
            body = self._position(ts, at)
            ts.next_position = at + self._position_interval(ts)
        due = at if ts.pending else min(ts.next_position, ts.next_change)
        heapq.heappush(self._team_heap, (max(due, at), i))
        team_id = ts.team.id
        source = f"team/{team_id}"
        payload: dict[str, Any] = {"id": self._next_id(source), "ts": self._ts(self.sim_time(ts_at))}
        payload.update(body)
        payload["seq"] = ts.seq
        ts.seq += 1
        payload["sim"] = True
        leaf = {Feed.POSITION: "position", Feed.STATUS: "status", Feed.REPORT: "report"}[feed]
        return feed, team_topic(team_id, leaf), source, payload

    def _position_interval(self, ts: _TeamState) -> float:
        if ts.status in (TeamStatus.EN_ROUTE, TeamStatus.RETURNING):
            return self.mix.position_moving_s
        if ts.status == TeamStatus.OFF_DUTY:
            return self.mix.position_off_duty_s
        return self.mix.position_idle_s

    def _advance(self, ts: _TeamState, at: float) -> None:
        """Run the team's state machine up to ``at``, queueing a status for each change."""
        rng = self._rng
        team = ts.team
        while ts.next_change <= at:
            t = ts.next_change
            status = ts.status
            if status == TeamStatus.AVAILABLE:
                if ts.stand_down_next:
                    ts.stand_down_next = False
                    self._change(ts, t, TeamStatus.OFF_DUTY)
                    ts.next_change = t + rng.uniform(4, 10) * 3600
                    continue
                self._incidents += 1
                ts.incident_id = f"SIM-{self.run}-{self._incidents:05d}"
                node = rng.randrange(len(ts.streets.nodes))
                nlat, nlon = ts.streets.nodes[node]
                ts.scene = offset_by_metres(nlat, nlon, rng.uniform(-120, 120), rng.uniform(-120, 120))
                self._change(ts, t, TeamStatus.DISPATCHED)
                turnout = rng.uniform(45, 90) if team.team_type == "fire" else rng.uniform(60, 180)
                ts.next_change = t + turnout
            elif status == TeamStatus.DISPATCHED:
                assert ts.scene is not None
                ts.route = ts.streets.route(team.base_lat, team.base_lon, *ts.scene)
                ts.route_start, ts.speed = t, rng.uniform(8.0, 14.0)  # 30–50 km/h with lights
                self._change(ts, t, TeamStatus.EN_ROUTE)
                ts.next_change = t + ts.route.length_m / ts.speed
            elif status == TeamStatus.EN_ROUTE:
                assert ts.scene is not None
                self._change(ts, t, TeamStatus.ON_SCENE)
                ts.pending.append((t, Feed.REPORT, {
                    "reporter": team.id,
                    "category": "on_scene",
                    "description": f"{team.name}已到达现场，{min(team.size, rng.randint(4, 12))}人展开处置",
                    "lat": round(ts.scene[0], 6),
                    "lon": round(ts.scene[1], 6),
                    "incident_id": ts.incident_id,
                    # an arrival note about the team's own work: never a new incident
                    "new_event": False,
                }))
                low, high = _ON_SCENE_MINUTES[team.team_type]
                ts.next_change = t + rng.uniform(low, high) * 60
            elif status == TeamStatus.ON_SCENE:
                assert ts.route is not None
                ts.route = ts.route.reversed()
                ts.route_start, ts.speed = t, rng.uniform(7.0, 11.0)
                self._change(ts, t, TeamStatus.RETURNING)
                ts.next_change = t + ts.route.length_m / ts.speed
            elif status == TeamStatus.RETURNING:
                ts.route = None
                self._change(ts, t, TeamStatus.AVAILABLE)
                self._schedule_next_dispatch(ts, t, rng)
            else:  # OFF_DUTY → back on shift
                self._change(ts, t, TeamStatus.AVAILABLE)
                self._schedule_next_dispatch(ts, t, rng)

    def _change(self, ts: _TeamState, t: float, status: TeamStatus) -> None:
        ts.status = status
        body: dict[str, Any] = {"status": str(status)}
        if ts.incident_id is not None and status not in (TeamStatus.AVAILABLE, TeamStatus.OFF_DUTY):
            body["incident_id"] = ts.incident_id
        ts.pending.append((t, Feed.STATUS, body))

    def _position(self, ts: _TeamState, at: float) -> dict[str, Any]:
        rng = self._rng
        team = ts.team
        heading: float | None = None
        speed = 0.0
        if ts.route is not None and ts.status in (TeamStatus.EN_ROUTE, TeamStatus.RETURNING):
            lat, lon, heading = ts.route.at((at - ts.route_start) * ts.speed)
            speed = ts.speed * rng.uniform(0.7, 1.1)  # traffic
            jitter = 4.0
        elif ts.status == TeamStatus.ON_SCENE and ts.scene is not None:
            lat, lon = ts.scene
            jitter = 6.0
        else:
            lat, lon = team.base_lat, team.base_lon
            jitter = 3.0  # a parked GPS still wanders a few metres
        lat, lon = offset_by_metres(lat, lon, rng.gauss(0, jitter), rng.gauss(0, jitter))
        body: dict[str, Any] = {"lat": round(lat, 6), "lon": round(lon, 6), "speed": round(speed, 1)}
        if heading is not None:
            body["heading"] = round(heading % 360.0, 1)
        return body


# --- helpers ----------------------------------------------------------------------------


def _fill(rng: random.Random, template: str, d: District) -> str:
    info = d.info
    road = rng.choice(info.roads)
    return template.format(
        place=rng.choice(info.places), road=road,
        road2=rng.choice([r for r in info.roads if r != road] or [road]),
        dir=rng.choice(_DIRECTIONS), color=rng.choice(_COLORS), shop=rng.choice(_SHOPS),
        reason=rng.choice(_REASONS), who=rng.choice(_WHO), count=rng.randint(2, 8),
        money=rng.choice((800, 2000, 5600, 12000, 38000)), b=rng.randint(1, 30), f=rng.randint(2, 28),
        age=rng.randint(3, 12), plate=_plate(rng),
    )


def _plate(rng: random.Random) -> str:
    """A 襄阳 number plate (鄂F is Xiangyang's prefix), invented."""
    chars = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "鄂F" + "".join(rng.choice(chars) for _ in range(5))


def _cumulative(
    cells: tuple[GridCell, ...], weight: Callable[[GridCell], float]
) -> tuple[list[GridCell], list[float]]:
    out: list[GridCell] = []
    cum: list[float] = []
    acc = 0.0
    for c in cells:
        acc += weight(c)
        out.append(c)
        cum.append(acc)
    return out, cum


def _pick(rng: random.Random, cum: list[float]) -> int:
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def now_cst() -> datetime:
    return datetime.now(UTC).astimezone(CST).replace(microsecond=0)
