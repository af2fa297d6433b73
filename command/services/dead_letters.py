"""Dead letters (docs/mqtt-contract.md §6) of the messages the command service reads
itself: kept in the ingest's ``dead_letter`` table, with their reason, never lost and
never blocking the feed they came on."""

from __future__ import annotations

from datetime import datetime

from command.state import CommandState
from wuwang.contract import topic_exercise_id


async def record(state: CommandState, topic: str, payload: bytes, received_at: datetime, reason: str) -> None:
    """Keep one refused message: the topic, the first bytes of the payload (as the
    ingest caps them), its size and why it was refused."""
    cap = state.settings.ingest.dead_letter_raw_cap
    async with state.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, exercise_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                received_at,
                topic.replace("\x00", ""),
                payload[:cap],
                len(payload),
                reason.replace("\x00", "")[:500],
                topic_exercise_id(topic),
            ),
        )
