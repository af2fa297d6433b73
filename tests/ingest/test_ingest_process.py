"""``python -m ingest`` as a real process: kill -9 and restart, SIGTERM drain,
two workers sharing a subscription, and refusing to start without endpoints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.rows import TABLE_COLUMNS
from testkit.feeds import Publisher, samples, scrape, total, wait_for
from tests.helpers_replies import one
from wuwang.settings import ENV_NAMES, REPO_ROOT, Settings

_METRICS_RE = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")


def ledger_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(one(conn.execute("SELECT count(*) FROM message_ledger"))[0])


def assert_exactly_once(url: str, n: int) -> None:
    """n ledger rows, n feed rows, and no (source, msg_id) twice in any feed table."""
    with psycopg.connect(url) as conn:
        assert one(conn.execute("SELECT count(*) FROM message_ledger"))[0] == n
        rows = 0
        for table, columns in TABLE_COLUMNS.items():
            source = "network, source_id" if "source_id" in columns else "team_id"
            count, distinct = one(conn.execute(
                f"SELECT count(*), count(DISTINCT ({source}, msg_id)) FROM {table}"))
            assert count == distinct, f"duplicates in {table}"
            rows += count
        assert rows == n
        assert one(conn.execute("SELECT count(*) FROM dead_letter"))[0] == 0


class IngestProcess:
    """``python -m ingest`` with the environment a launcher would give it."""

    def __init__(self, settings: Settings, workdir: Path, name: str = "ingest") -> None:
        self.settings = settings
        self.workdir = workdir
        self.name = name
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    def env(self) -> dict[str, str]:
        s = self.settings
        # Nothing from the outer environment may configure the child, except the basics.
        env = {k: v for k, v in os.environ.items() if k.lower() not in ENV_NAMES}
        env.update({
            "DATABASE_URL": str(s.shared.database_url), "REDIS_URL": str(s.shared.redis_url),
            "MQTT_URL": str(s.shared.mqtt_url),
            "MQTT_PROTOCOL": s.shared.mqtt_protocol, "INGEST_CLIENT_ID": s.ingest.client_id,
            "INGEST_SHARED_GROUP": s.ingest.shared_group or "", "DEMO_MODE": "1", "INGEST_METRICS_PORT": "0",
            "INGEST_SESSION_EXPIRY_S": str(s.ingest.session_expiry_s), "ALARM_STREAM": s.shared.alarm_stream,
            "INGEST_FLUSH_MS": str(s.ingest.flush_ms), "INGEST_BATCH_SIZE": str(s.ingest.batch_size),
        })
        return env

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ingest"], cwd=REPO_ROOT, env=self.env(),
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 30, 0.05, what=f"{self.name} subscribed (log {self.log_path})")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"ingest exited with {self.proc.returncode}:\n{self.log()}")
        return "subscribed:" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def metrics_url(self) -> str:
        m = _METRICS_RE.search(self.log())
        assert m, "no metrics port in the log"
        return f"http://127.0.0.1:{m.group(1)}/metrics"

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def ingest_process(make_settings: Callable[..., Settings],
                   tmp_path: Path) -> Iterator[Callable[..., IngestProcess]]:
    made: list[IngestProcess] = []

    def make(name: str = "ingest", **overrides: Any) -> IngestProcess:
        overrides.setdefault("ingest_session_expiry_s", 120)  # the session broker outlives this test
        settings = make_settings(**overrides)
        p = IngestProcess(settings, tmp_path, name)
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill()


def _group() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_stores_each_message_once(
        ingest_process: Callable[..., IngestProcess], mqtt_broker: Any, database_url: str) -> None:
    n = 5000
    ingest = ingest_process(ingest_shared_group=_group() if mqtt_broker.is_mosquitto else "")
    ingest.start()
    msgs = samples(n, seed=11)
    published: list[int] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
            try:
                for start in range(0, n, 500):  # in slices, so the stream outlasts the kill
                    published.append(pub.publish_all(m.item() for m in msgs[start:start + 500]))
            finally:
                pub.close()
        except BaseException as exc:
            errors.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        wait_for(lambda: ledger_count(database_url) >= 1000, 60, what="1000 stored before the kill")
        ingest.signal(signal.SIGKILL)
        assert ingest.wait() == -signal.SIGKILL
        ingest.start()  # same client id: the broker resumes the session
    finally:
        publisher.join(120)
    assert not errors, errors
    assert sum(published) == n
    wait_for(lambda: ledger_count(database_url) == n, 90, what=f"{n} stored after the restart")
    time.sleep(0.5)  # anything doubled would show up now
    assert_exactly_once(database_url, n)
    ingest.signal(signal.SIGTERM)
    assert ingest.wait() == 0


@pytest.mark.slow
def test_sigterm_drains_commits_and_exits_0(ingest_process: Callable[..., IngestProcess], mqtt_broker: Any,
                                            database_url: str) -> None:
    n = 3000
    ingest = ingest_process(ingest_shared_group=_group() if mqtt_broker.is_mosquitto else "",
                            ingest_batch_size=100)
    ingest.start()
    msgs = samples(n, seed=5)
    with psycopg.connect(database_url) as blocker:
        # Hold the writer, so that SIGTERM finds messages received and not yet written.
        blocker.execute("LOCK TABLE message_ledger IN SHARE ROW EXCLUSIVE MODE")
        pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
        try:
            pub.publish_all(m.item() for m in msgs)
        finally:
            pub.close()
        wait_for(lambda: total(scrape(ingest.metrics_url), "ingest_queue_depth") > 0, 30,
                 what="messages waiting in the ingest's queue")
        ingest.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert ingest.proc is not None and ingest.proc.poll() is None, "exited without writing its queue"
        blocker.rollback()
    assert ingest.wait() == 0, ingest.log()
    log = ingest.log()
    assert "every message taken was committed and acknowledged" in log
    assert "Traceback" not in log
    assert ledger_count(database_url) > 0
    # What it had not taken is still the broker's: the next start stores it, once.
    ingest.start()
    wait_for(lambda: ledger_count(database_url) == n, 60, what=f"all {n} stored")
    ingest.signal(signal.SIGINT)
    assert ingest.wait() == 0
    assert_exactly_once(database_url, n)


@pytest.mark.slow
def test_two_workers_share_the_load(ingest_process: Callable[..., IngestProcess], mqtt_broker: Any,
                                    database_url: str) -> None:
    if not mqtt_broker.is_mosquitto:
        pytest.skip("shared subscriptions need Mosquitto")
    group = _group()
    a = ingest_process("ingest-a", ingest_shared_group=group)
    b = ingest_process("ingest-b", ingest_shared_group=group)
    assert a.settings.ingest.client_id != b.settings.ingest.client_id
    a.start()
    b.start()
    n = 2000
    pub = Publisher(mqtt_broker.url_for("simulator"), protocol=mqtt_broker.protocol)
    try:
        pub.publish_all(m.item() for m in samples(n, seed=21))
    finally:
        pub.close()
    wait_for(lambda: ledger_count(database_url) == n, 60, what=f"{n} stored by two workers")
    stored = [total(scrape(p.metrics_url), "ingest_messages_total", outcome="stored") for p in (a, b)]
    assert all(s > 0 for s in stored), stored
    assert sum(stored) == n
    for p in (a, b):
        p.signal(signal.SIGTERM)
    assert [p.wait() for p in (a, b)] == [0, 0]
    assert_exactly_once(database_url, n)


def test_refuses_to_start_without_endpoints(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ENV_NAMES}
    env["DEMO_MODE"] = "1"
    done = subprocess.run([sys.executable, "-m", "ingest"], cwd=REPO_ROOT, env=env, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "DATABASE_URL" in err and "REDIS_URL" in err and "MQTT_URL" in err
