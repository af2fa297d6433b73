"""The event types a warning (预警) may name: the four categories of GB/T 35561 (突发事件
分类与编码) and their sub-types, as data. A warning stores the sub-type's key; its
category follows from it. Keys are this console's own (stable, ASCII, used in the API and
the MQTT payload); the words are what the console shows.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple


class Category(NamedTuple):
    key: str
    zh: str
    en: str


class EventType(NamedTuple):
    key: str
    category: str
    zh: str
    en: str


CATEGORIES: tuple[Category, ...] = (
    Category("natural", "自然灾害", "Natural disaster"),
    Category("accident", "事故灾难", "Accident and disaster"),
    Category("health", "公共卫生事件", "Public health event"),
    Category("security", "社会安全事件", "Social security event"),
)

_TYPES: tuple[tuple[str, str, str, str], ...] = (
    # 自然灾害
    ("flood_drought", "natural", "水旱灾害", "Flood or drought"),
    ("meteorological", "natural", "气象灾害", "Meteorological disaster"),
    ("earthquake", "natural", "地震灾害", "Earthquake"),
    ("geological", "natural", "地质灾害", "Geological disaster"),
    ("marine", "natural", "海洋灾害", "Marine disaster"),
    ("biological", "natural", "生物灾害", "Biological disaster"),
    ("forest_fire", "natural", "森林草原火灾", "Forest or grassland fire"),
    # 事故灾难
    ("work_safety", "accident", "工矿商贸等企业安全事故", "Industrial or commercial accident"),
    ("traffic", "accident", "交通运输事故", "Transport accident"),
    ("public_facility", "accident", "公共设施和设备事故", "Public facility or equipment accident"),
    ("nuclear_radiation", "accident", "核与辐射事故", "Nuclear or radiation accident"),
    ("environmental", "accident", "环境污染和生态破坏事件", "Environmental pollution or ecological damage"),
    # 公共卫生事件
    ("epidemic", "health", "传染病疫情", "Infectious disease outbreak"),
    ("unexplained_illness", "health", "群体性不明原因疾病", "Cluster of unexplained illness"),
    ("food_occupational", "health", "食品安全和职业危害", "Food safety or occupational hazard"),
    ("animal_epidemic", "health", "动物疫情", "Animal epidemic"),
    ("other_health", "health", "其他严重影响公众健康和生命安全的事件", "Other threat to public health"),
    # 社会安全事件
    ("terrorist", "security", "恐怖袭击事件", "Terrorist attack"),
    ("criminal", "security", "刑事案件", "Criminal case"),
    ("mass_incident", "security", "群体性事件", "Mass incident"),
    ("economic_security", "security", "经济安全事件", "Economic security event"),
    ("foreign_related", "security", "涉外突发事件", "Foreign-related emergency"),
)

EVENT_TYPES: MappingProxyType[str, EventType] = MappingProxyType(
    {key: EventType(key, cat, zh, en) for key, cat, zh, en in _TYPES}
)
CATEGORY_OF: MappingProxyType[str, Category] = MappingProxyType({c.key: c for c in CATEGORIES})
