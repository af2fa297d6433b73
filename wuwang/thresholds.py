"""Sensor alarm thresholds: the one home of the rule the ingest raises alarms by and the
simulators' drill ramps are written to cross (both sides import it from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Threshold:
    raise_at: float  # alarm when value >= raise_at ...
    clear_below: float  # ... and not again until a value < clear_below

    def __post_init__(self) -> None:
        if not self.clear_below <= self.raise_at:
            raise ValueError(f"clear level {self.clear_below} must not exceed raise level {self.raise_at}")


#: Per sensor kind: (raise level, clear level), in the unit the contract's examples use.
DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "smoke": Threshold(10.0, 5.0),  # %/m obscuration
    "gas": Threshold(20.0, 10.0),  # %LEL
    "co": Threshold(50.0, 30.0),  # ppm
    "water_level": Threshold(3.0, 2.7),  # m
    "temperature": Threshold(60.0, 50.0),  # °C
}
