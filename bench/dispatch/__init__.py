"""Dispatch benchmark (recommendation latency): ``python -m bench.dispatch``; see run.py."""
