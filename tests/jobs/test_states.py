"""The job state machine: exactly the documented transitions are legal."""

from __future__ import annotations

import itertools

import pytest

from steadyvoice.errors import IllegalTransition
from steadyvoice.jobs.states import (
    TERMINAL,
    TRANSITIONS,
    JobStatus,
    check_transition,
    sources_of,
)

Q, R, S, F, C = (
    JobStatus.QUEUED,
    JobStatus.RUNNING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)

LEGAL = {
    (Q, R),
    (Q, C),
    (Q, F),
    (R, S),
    (R, F),
    (R, Q),
    (R, C),
}
ALL_PAIRS = list(itertools.product(JobStatus, repeat=2))


def test_transition_table_is_exactly_the_documented_one() -> None:
    table = {(src, dst) for src, targets in TRANSITIONS.items() for dst in targets}
    assert table == LEGAL
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_pass(current: JobStatus, target: JobStatus) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_every_other_transition_is_illegal(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    err = info.value
    assert err.code == "illegal_transition"
    assert err.status == 409
    assert err.details == {"current": current.value, "target": target.value}
    assert current.value in err.message and target.value in err.message


def test_terminal_states_have_no_exits() -> None:
    assert {S, F, C} == TERMINAL
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        for target in JobStatus:
            with pytest.raises(IllegalTransition):
                check_transition(state, target)


def test_no_state_may_stay_where_it_is() -> None:
    for state in JobStatus:
        with pytest.raises(IllegalTransition):
            check_transition(state, state)


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        (Q, {R}),
        (R, {Q}),
        (S, {R}),
        (F, {Q, R}),
        (C, {Q, R}),
    ],
)
def test_sources_of(target: JobStatus, sources: set[JobStatus]) -> None:
    assert sources_of(target) == frozenset(sources)


def test_states_are_stored_as_plain_text() -> None:
    assert [s.value for s in JobStatus] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "canceled",
    ]
    assert JobStatus("running") is R
    assert str(R) == "running"
