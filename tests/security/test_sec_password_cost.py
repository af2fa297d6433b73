"""The stored passwords' cost: argon2id with argon2-cffi's RFC 9106 low-memory profile
(three passes over 64 MiB on four lanes). The test accounts are hashed cheaper
(testkit/users.py) — which proves that login reads the cost from each hash, and is why this
test holds the production cost on its own."""

from __future__ import annotations

from argon2 import PasswordHasher

from command.security import hash_password, verify_password
from testkit.users import hashed_once


def test_passwords_are_stored_as_argon2id_at_the_production_cost() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), stored
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horse ")


def test_a_hash_of_another_cost_is_verified_by_its_own_parameters() -> None:
    cheap = hashed_once("demo")
    assert cheap.startswith("$argon2id$v=19$m=8192,t=1,p=1$"), cheap
    assert verify_password(cheap, "demo") and not verify_password(cheap, "Demo")
    # and a stronger one than production's, as a deployment that raised the cost left it
    strong = PasswordHasher(time_cost=4, memory_cost=64 * 1024, parallelism=4).hash("demo")
    assert verify_password(strong, "demo")


def test_an_unknown_user_costs_a_production_verification() -> None:
    """No account: the check runs against a hash of the production cost (the dummy), so an
    unknown name is not told apart by a quicker refusal."""
    assert not verify_password(None, "demo")
