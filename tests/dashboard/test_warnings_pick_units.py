"""Districts picked on the map for a warning's area (callbacks/warnings.py): the pure part."""

from __future__ import annotations

from dashboard.callbacks.warnings import districts_hideout, picked_districts
from dashboard.layers import LAYERS


def _district(adcode: object) -> dict[str, object]:
    return {"type": "Feature", "properties": {"i": adcode, "n": "襄城区"}, "geometry": None}


def test_a_click_adds_the_district_and_a_second_takes_it_out() -> None:
    assert picked_districts(None, _district(420602), form_open=True) == [420602]
    assert picked_districts([420606], _district(420602), form_open=True) == [420606, 420602]
    assert picked_districts([420606, 420602], _district(420602), form_open=True) == [420606]


def test_nothing_changes_with_the_form_folded_or_a_click_that_is_not_a_district() -> None:
    assert picked_districts([420606], _district(420602), form_open=False) is None
    for feature in (None, {}, {"properties": None}, _district("420602"), _district(True), _district(None)):
        assert picked_districts([420606], feature, form_open=True) is None


def test_the_picked_districts_are_highlighted_only_while_the_form_is_open() -> None:
    hideout = {"basemap": True}
    assert districts_hideout(hideout, [420602, 420606], form_open=True) == {
        "basemap": True,
        "picked": [420602, 420606],
    }
    assert districts_hideout(hideout, [420602], form_open=False) == {"basemap": True, "picked": []}
    assert hideout == {"basemap": True}  # the layer's own options are not changed in place
    assert districts_hideout(None, None, form_open=True) == {"picked": []}


def test_the_districts_layer_hands_clicks_on() -> None:
    districts = next(layer for layer in LAYERS if layer.key == "districts")
    assert districts.each == "onEachDistrict" and districts.style == "districtStyle"
