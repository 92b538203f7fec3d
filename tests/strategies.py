"""Hypothesis strategies shared by the state-machine tests."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from actors.thread.records import ThreadKey
from tests.actors.scripted import Kind

#: A handful of keys, so that children collide, crash and recover while others work.
actor_keys = st.sampled_from(["a", "b", "c", "d"])

#: How a scripted message behaves; OK dominates, as in real traffic.
work_kinds = st.sampled_from(
    [Kind.OK, Kind.OK, Kind.OK, Kind.CRASH, Kind.CRASH_ONCE, Kind.HANG, Kind.BACKGROUND]
)

#: Time steps, in seconds: below, around and far above every timeout in the configs used.
time_steps = st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0, 6.0])

#: Threads of one forum (topics 1-3) and a DM.
thread_keys = st.sampled_from(
    [ThreadKey(-100, 1), ThreadKey(-100, 2), ThreadKey(-100, 3), ThreadKey(7)]
)

#: What the scripted agent does with a message (see ``ScriptedAgent``): answers fast and
#: slow, hangs, output then a hang, failures before and after output, crashes.
agent_behaviours = st.sampled_from(
    ["", "", "#slow:3", "#slow:12", "#hang", "#stuck", "#fail", "#late-fail", "#bug"]
)

#: Commands a user may send; ``cc`` is configured as a reset skill.
thread_commands = st.sampled_from(["new", "cc", "stop", "status", "retry", "help", "model"])


def machine_settings(steps: int, share: float = 1.0) -> settings:
    """Settings of the state machines: ``share`` times the profile's examples (see
    ``tests/conftest.py``); deterministic time makes each example cheap."""
    current = settings.default
    assert current is not None, "tests/conftest.py loads a profile"
    return settings(
        max_examples=round(current.max_examples * share),
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
