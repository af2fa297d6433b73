"""Users for the tests and the benchmarks, seeded without paying argon2 for each one.

Every test database gets the demo accounts again, and a whole-stack city one field
account per team: at argon2's cost (tens of milliseconds of every core, about a second
each on a loaded CI machine) that was most of a command test's set-up. The harness
hashes each password once per process and stores that hash for every user who has the
password; logging in still verifies it with argon2, as in production, where each user's
hash has its own salt (``command.users.upsert_users`` without ``hashed``).
"""

from __future__ import annotations

import functools
from typing import Any

from psycopg import Connection

from command.security import hash_password
from command.users import NewUser, upsert_users


@functools.cache
def hashed_once(password: str) -> str:
    """The password's argon2 hash, made once per process (the same salt for every user
    who has it: test accounts only)."""
    return hash_password(password)


def seed_users(conn: Connection[Any], users: list[NewUser]) -> None:
    """``upsert_users`` with :func:`hashed_once`."""
    upsert_users(conn, users, hashed_once)
