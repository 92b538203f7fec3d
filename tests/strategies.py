"""Hypothesis strategies shared by the state-machine tests."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from actors.thread.records import ThreadKey
from actors.thread.settings import Activation
from tests.actors.scripted import Kind

#: A handful of keys, so that children collide, crash and recover while others work.
actor_keys = st.sampled_from(["a", "b", "c", "d"])

#: How a scripted message behaves; OK dominates, as in real traffic.
work_kinds = st.sampled_from(
    [Kind.OK, Kind.OK, Kind.OK, Kind.CRASH, Kind.CRASH_ONCE, Kind.HANG, Kind.BACKGROUND]
)

#: Time steps, in seconds: below, around and far above every timeout in the configs used.
time_steps = st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0, 6.0])

#: Threads of one forum (topics 1-3), a DM, and two members' own threads of a group with
#: per-user sessions (siblings of one conversation).
thread_keys = st.sampled_from(
    [
        ThreadKey(-100, 1),
        ThreadKey(-100, 2),
        ThreadKey(-100, 3),
        ThreadKey(7),
        ThreadKey(-200, None, 1),
        ThreadKey(-200, None, 2),
    ]
)

#: Senders of user messages and commands (2 is not an admin).
thread_users = st.sampled_from([1, 1, 2])

#: How a machine's threads answer groups, and how long they debounce (mostly off).
thread_activations = st.sampled_from(Activation)
thread_debounces = st.sampled_from([0.0, 0.0, 1.5])

#: What an admin or another user asks ``/activation`` for.
activation_args = st.sampled_from(["", "always", "mention", "bogus"])

#: Which run a Stop button press names: the newest of its thread's answers, an older one,
#: or one that never was.
stop_targets = st.sampled_from(["newest", "newest", "older", "never"])

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


def machine_timeout() -> float:
    """pytest-timeout's limit for a state machine: 15 min at the ``ci`` profile, none at
    ``fuzz`` (twenty times the examples take longer on a busy machine)."""
    return 0.0 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 900.0


#: Pieces of Markdown as models write it, and of what breaks renderers: fences (closed,
#: unclosed, with and without a language), lists, quotes, emphasis, links (good and bad),
#: tables, raw HTML, entities, emoji (surrogate pairs, joined, flags), marks, long words.
markdown_fragments = st.sampled_from(
    [
        *["word", "word ", " ", "  ", "\n", "\n", "\n\n", "\t"],
        *["**", "*", "_", "__", "~~", "`", "```", "```python\n", "\n```\n", "~~~\n"],
        *["# ", "## ", "- ", "* ", "1. ", "3) ", "  - ", "    ", "> ", "> > ", "---\n"],
        "[link](https://example.org/a?b=1&c=2)",
        "[bad](javascript:alert(1))",
        "[tg](tg://user?id=42)",
        "<http://auto.link/x>",
        "![alt](http://img.example/i.png)",
        "| a | b |\n|---|--:|\n| 1 | 22 |\n",
        *["<b>", "</i>", "<pre>", "&", "&amp;", "&#x1F600;", "&lt;", "<", ">", '"', "\\*"],
        *["👍", "👨\u200d👩\u200d👧", "🇩🇪", "e\u0301", "日本語", "  \n"],
        "x" * 70,
        "lorem ipsum dolor sit amet " * 8,
        "    return x < y  # indented\n",
    ]
)

#: Markdown-ish texts, now and then long enough for several 4096-unit messages.
markdown_texts = st.builds(
    lambda parts, times: "".join(parts) * times,
    st.lists(st.one_of(markdown_fragments, st.text(max_size=6)), max_size=50),
    st.sampled_from([1, 1, 1, 2, 40]),
)

#: Whole blocks that end where they end: paragraphs, headings, list items, quotes, closed
#: fences, tables, rules (no link reference definitions: they reach back).
markdown_blocks = st.one_of(
    st.lists(
        st.sampled_from(["word", "**bold**", "*it*", "`c`", "👍", "a&b", "<x>"]), min_size=1
    ).map(" ".join),
    st.sampled_from(["# Title", "## Sub *title*", "- item", "- item\n  - nested", "1. first"]),
    st.sampled_from(
        ["> quoted **text**", "> quote\n> > nested", "---", "| a | b |\n|---|---|\n| 1 | 2 |"]
    ),
    st.builds(
        lambda lang, lines: f"```{lang}\n" + "\n".join(lines) + "\n```",
        st.sampled_from(["", "python", "js"]),
        st.lists(st.sampled_from(["x = 1", "    return x < y", "", "# é 👍"])).map(
            lambda lines: ["start", *lines]
        ),
    ),
    st.builds(
        lambda words: " ".join(words), st.lists(st.just("lorem ipsum"), min_size=20, max_size=200)
    ),
)

#: Message limits: tiny (hard cuts, a suffix longer than a piece), small, and Telegram's.
markdown_limits = st.sampled_from([12, 50, 200, 4096])

#: Suffixes of a cut-off answer.
markdown_suffixes = st.sampled_from(["", " …\n[answer cut off]", " 😀 <&>"])
