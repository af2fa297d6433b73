"""Fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.mqtt5_scripted_broker import ScriptedBroker


@pytest.fixture
def strict_broker() -> Iterator[ScriptedBroker]:
    """A scripted broker that announces Receive Maximum 2."""
    broker = ScriptedBroker(receive_maximum=2).start()
    yield broker
    broker.stop()
