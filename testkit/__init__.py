"""Test harnesses for the tests (tests/) and the benchmarks (bench/): whole stacks on
this machine, sample feeds, publishers. Not part of the product: it is the one place
outside tests/ and bench/ allowed to import across services, and it is left out of the
wheel (pyproject.toml lists the packages that ship).
"""
