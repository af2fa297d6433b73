"""The shift benchmark: a peak hour with a known ground truth through triage (issue 9)."""
