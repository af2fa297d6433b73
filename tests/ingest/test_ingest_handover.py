"""The receiving process → writer process hand-over (ingest/writerproc.py), without a
database: what crosses the pipe arrives as it was sent, in order, and the writer process's
inbox behaves as the queue it replaces."""

from __future__ import annotations

import pickle
import queue
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.writerproc import ChunkInbox, _chunk, _deliveries, _take
from wuwang.mqttlink import Delivery

_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine is slow, not wrong
@given(st.lists(st.tuples(st.text(min_size=1, max_size=80), st.binary(max_size=300), _TIMES,
                          st.integers(0, 2**20)), max_size=30))  # fmt: skip
def test_a_chunk_arrives_as_it_was_sent(items: list[tuple[str, bytes, datetime, int]]) -> None:
    sent = [Delivery(t, p, at, 1, i + 1, 7, size) for i, (t, p, at, size) in enumerate(items)]
    got = _deliveries(pickle.loads(pickle.dumps(_chunk(sent))))
    assert [(d.topic, d.payload, d.received_at, d.size) for d in got] == [
        (d.topic, d.payload, d.received_at, d.size) for d in sent
    ]
    assert all(d.received_at.tzinfo is UTC for d in got)


def test_the_writer_inbox_keeps_order_and_times_out_like_a_queue() -> None:
    inbox = ChunkInbox()
    now = datetime.now(UTC)
    a, b, c = (Delivery(f"t/{n}", b"{}", now, 1, n, 1, 2) for n in range(3))
    with pytest.raises(queue.Empty):
        inbox.get_nowait()
    with pytest.raises(queue.Empty):
        inbox.get(timeout=0.01)
    inbox.put_chunk([a, b])
    inbox.put_chunk([c])
    assert not inbox.empty() and inbox.qsize() == 3
    assert [inbox.get(timeout=1), inbox.get_nowait(), inbox.get()] == [a, b, c]
    assert inbox.empty()


def test_a_waiting_writer_is_woken_by_a_chunk() -> None:
    inbox = ChunkInbox()
    got: list[Delivery] = []
    waiter = threading.Thread(target=lambda: got.append(inbox.get(timeout=30)))
    waiter.start()
    item = Delivery("t", b"{}", datetime.now(UTC) - timedelta(seconds=1), 1, 1, 1, 2)
    inbox.put_chunk([item])
    waiter.join(30)
    assert got == [item]


def test_the_feeder_takes_a_run_from_the_link_inbox_and_leaves_the_rest() -> None:
    link_inbox: queue.Queue[Delivery] = queue.Queue(maxsize=5)
    items = [Delivery(f"t/{n}", b"{}", datetime.now(UTC), 1, n, 1, 2) for n in range(5)]
    for d in items:
        link_inbox.put_nowait(d)
    assert link_inbox.full()
    assert _take(link_inbox, 3) == items[:3]
    link_inbox.put_nowait(items[0])  # room again, as after get()
    assert _take(link_inbox, 10) == [*items[3:], items[0]]
    assert _take(link_inbox, 10) == []
