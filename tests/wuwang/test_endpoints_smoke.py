import psycopg
import redis

from tests.conftest import Broker
from tests.helpers_replies import one
from wuwang import db


def test_services_answer(database_url: str, redis_url: str, mqtt_broker: Broker) -> None:
    with psycopg.connect(database_url) as conn:
        assert db.backend(conn) in ("plain", "timescale")
        assert one(conn.execute("SELECT count(*) FROM schema_migrations"))[0] >= 2
    assert redis.Redis.from_url(redis_url).ping()
    assert mqtt_broker.kind in ("mosquitto", "amqtt")
