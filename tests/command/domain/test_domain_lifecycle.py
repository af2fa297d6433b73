"""The lifecycle table (``LIFECYCLE``) and what is derived from it: the transitions, the
terminal, open and holdable states, the refusals and ``next_acts`` — which must offer
exactly the acts the decisions accept."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

from command.domain.incidents import (
    EVENT_KINDS,
    HOLDABLE_STATES,
    LIFECYCLE,
    TEAM_ACTS,
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    IllegalTransition,
    IncidentAct,
    IncidentState,
    Payload,
    acts_allowed,
    decide_cancel,
    decide_close,
    decide_dispatch,
    decide_false_alarm,
    decide_hold,
    decide_reopen,
    decide_resolve,
    decide_resume,
    decide_verify,
    next_acts,
    replay,
)
from tests.command.domain.test_domain_incidents import Story, story_in

S = IncidentState
A = IncidentAct

#: Each act on the whole incident, given as an operator would (with a reason).
GIVE: dict[IncidentAct, Callable[[Story], list[Event]]] = {
    A.VERIFY: lambda s: s.do(decide_verify),
    A.DISPATCH: lambda s: s.do(decide_dispatch, team_id="T9", order_id="O9"),
    A.RESOLVE: lambda s: s.do(decide_resolve),
    A.REOPEN: lambda s: s.do(decide_reopen, reason="核查未通过"),
    A.CLOSE: lambda s: s.do(decide_close),
    A.CANCEL: lambda s: s.do(decide_cancel, reason="报警人撤回"),
    A.FALSE_ALARM: lambda s: s.do(decide_false_alarm, reason="现场无情况"),
    A.HOLD: lambda s: s.do(decide_hold, reason="等待增援"),
    A.RESUME: lambda s: s.do(decide_resume),
}


def test_every_incident_act_has_a_decision() -> None:
    assert set(GIVE) == set(IncidentAct) - TEAM_ACTS


@pytest.mark.parametrize(
    ("state", "held"),
    [(state, False) for state in IncidentState] + [(state, True) for state in sorted(HOLDABLE_STATES)],
    ids=lambda v: str(v),
)
def test_next_acts_are_exactly_the_acts_the_decisions_accept(state: IncidentState, held: bool) -> None:
    base = story_in(state)
    if held:
        base.do(decide_hold, reason="等待")
    offered = next_acts(base.inc)
    assert offered == acts_allowed(state, held=held)
    for act, give in GIVE.items():
        s = story_in(state)
        if held:
            s.do(decide_hold, reason="等待")
        if act in offered:
            give(s)
            assert replay(s.events) == s.inc
        else:
            with pytest.raises(IllegalTransition):
                give(s)


def test_every_act_leads_to_one_state_wherever_it_moves_it() -> None:
    for act in IncidentAct:
        ends = {path[-1] for acts in LIFECYCLE.values() for a, path in acts.items() if a is act and path}
        assert len(ends) <= 1, (act, ends)


def test_the_states_follow_from_the_table() -> None:
    assert set(LIFECYCLE) == set(IncidentState)
    assert {s for s, acts in LIFECYCLE.items() if not acts} == TERMINAL_STATES
    # every step of a path is a transition, and every transition is the step of an act
    steps = {
        (frm, to)
        for state, acts in LIFECYCLE.items()
        for path in acts.values()
        for frm, to in zip((state, *path), path, strict=False)
    }
    assert steps == {(frm, to) for frm, tos in TRANSITIONS.items() for to in tos}


def test_refusals_name_the_state_and_what_it_allows() -> None:
    s = story_in(S.VERIFIED)
    with pytest.raises(IllegalTransition) as err:
        s.do(decide_close)
    assert err.value.reason == (
        f"cannot close: incident {s.inc.incident_id} is verified; verified → closed is not allowed"
        " (from verified it may go to: cancelled, dispatched, false_alarm)"
    )


def test_event_kinds_are_the_payload_kinds() -> None:
    kinds = [typing.get_args(p.model_fields["kind"].annotation)[0] for p in typing.get_args(Payload)]
    assert list(EVENT_KINDS) == kinds and len(set(kinds)) == len(kinds)


def test_doc_lifecycle_table_matches_the_code() -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "incidents.md"
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = lines.index("| State | Acts (→ the states they lead through) |")
    table: dict[IncidentState, dict[IncidentAct, tuple[IncidentState, ...]]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        state, acts = (c.strip() for c in line.strip().strip("|").split("|"))
        table[IncidentState(state.strip("`"))] = {
            IncidentAct(act): tuple(IncidentState(t) for t in re.findall(r"`([a-z_]+)`", path))
            for act, path in re.findall(r"`([a-z_]+)`( → (?:`[a-z_]+`(?:, )?)+)?", acts)
        }
    assert table == {state: dict(acts) for state, acts in LIFECYCLE.items()}
