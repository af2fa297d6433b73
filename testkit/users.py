"""Users for the tests and the benchmarks, seeded without paying argon2 for each one.

Every test database gets the demo accounts again, and a whole-stack city one field
account per team: at argon2's cost (tens of milliseconds of every core, about a second
each on a loaded CI machine) that was most of a command test's set-up. The harness
hashes each password once per process and stores that hash for every user who has the
password; logging in still verifies it with argon2, as in production, where each user's
hash has its own salt (``command.users.upsert_users`` without ``hashed``).

The test accounts' hash is argon2id at its lowest cost (one pass over 8 MiB, one lane):
``verify_password`` reads the cost from the hash, so every login of the suite still goes
through the product's own check, without the production cost (three passes over 64 MiB on
four lanes, ~160 ms of CPU per login — thousands of logins were minutes of the suite's
two cores). The production cost is held by tests/security/test_sec_password_cost.py.
"""

from __future__ import annotations

import functools
from typing import Any

from argon2 import PasswordHasher
from psycopg import Connection

from command.users import NewUser, upsert_users

#: Test accounts only: the demo's passwords are "demo" (docs/security.md).
_TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@functools.cache
def hashed_once(password: str) -> str:
    """The password's argon2id hash at the test cost, made once per process (the same
    salt for every user who has it: test accounts only)."""
    return _TEST_HASHER.hash(password)


def seed_users(conn: Connection[Any], users: list[NewUser]) -> None:
    """``upsert_users`` with :func:`hashed_once`."""
    upsert_users(conn, users, hashed_once)
