"""What the upper-level platform sends back (receipts, instructions) is read item by item:
a hostile or broken peer's NUL, a missing field or a body that is not a list is refused
with its reason, and never holds back the items that read."""

from __future__ import annotations

from typing import Any

from wuwang.exchange import Receipt, each_valid


def _receipt(receipt_id: str, signed_by: str = "省应急厅值班员") -> dict[str, Any]:
    return {
        "receiptId": receipt_id,
        "reportId": "INC-20261207-000001-R01",
        "status": "received",
        "receivedTime": "2026-12-07T20:00:00+08:00",
        "unit": {"name": "湖北省应急管理厅总值班室", "areaCode": "420000"},
        "signedBy": signed_by,
    }


def test_a_nul_in_one_receipt_refuses_that_one_and_keeps_the_rest() -> None:
    good, bad = each_valid(Receipt, [_receipt("RC-1", "值班\x00员"), _receipt("RC-2")])
    assert [r.receiptId for r in good] == ["RC-2"]
    assert len(bad) == 1 and bad[0].startswith("item 0:") and "NUL" in bad[0]


def test_a_nul_anywhere_inside_is_refused() -> None:
    nested = _receipt("RC-3")
    nested["unit"]["name"] = "省\x00厅"
    good, bad = each_valid(Receipt, [nested])
    assert good == [] and "NUL" in bad[0]


def test_a_missing_field_or_a_body_that_is_no_list_is_named() -> None:
    partial = _receipt("RC-4")
    del partial["signedBy"]
    assert each_valid(Receipt, [partial])[0] == []
    assert each_valid(Receipt, {"receiptId": "RC-5"}) == ([], ["not a list of Receipt: dict"])
