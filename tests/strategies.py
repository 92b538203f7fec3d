"""Hypothesis strategies shared by the state-machine tests."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.actors.scripted import Kind

#: A handful of keys, so that children collide, crash and recover while others work.
actor_keys = st.sampled_from(["a", "b", "c", "d"])

#: How a scripted message behaves; OK dominates, as in real traffic.
work_kinds = st.sampled_from(
    [Kind.OK, Kind.OK, Kind.OK, Kind.CRASH, Kind.CRASH_ONCE, Kind.HANG, Kind.BACKGROUND]
)

#: Time steps, in seconds: below, around and far above every timeout in the configs used.
time_steps = st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0, 6.0])
