"""Groups end to end (simulated Bot API -> gateway -> simulated LLM): who the bot answers,
what the agent sees of a mention and of a reply, and per-user sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.thread.records import ThreadKey
from gateway.demo.botapi_sim import BOT_USERNAME, BotAPISimulator
from gateway.demo.model_sim import content_text
from tests.gateway.harness import ADMIN, Running, running_gateway, wait_until

pytestmark = pytest.mark.anyio
GROUP = -100500
MENTION = f"@{BOT_USERNAME}"


def user_texts(run: Running) -> list[str]:
    """The last user message of every model request, as the agent saw it."""
    texts = []
    for _key, body in run.llm.requests:
        users = [m for m in body["messages"] if m.get("role") == "user"]
        texts.append(content_text(users[-1]["content"]) if users else "")
    return texts


async def test_an_unaddressed_group_message_gets_no_run_and_no_reply(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, group_activation="mention") as run:
        tg = run.telegram
        chatter = tg.say("lunch at noon?", chat_id=GROUP, forum=False, user_id=1)
        await run.quiet()
        assert run.outcome(chatter) == "not-addressed"
        assert run.replies_to(chatter) == []
        assert run.llm.requests == []


async def test_a_mention_reaches_the_agent_without_the_mention(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, group_activation="mention") as run:
        tg = run.telegram
        asked = tg.say(f"{MENTION} what is 2+2?", chat_id=GROUP, forum=False)
        await wait_until(lambda: run.outcome(asked) == "answered")
        assert user_texts(run) == ["what is 2+2?"]
        assert run.replies_to(asked)[0].text.startswith("You said: what is 2+2?")
        linked = tg.say(
            "Threadgate: and 3+3?", chat_id=GROUP, forum=False, text_mention="Threadgate"
        )
        await wait_until(lambda: run.outcome(linked) == "answered")
        assert user_texts(run)[-1] == "and 3+3?"


async def test_an_unaddressed_sticker_in_a_mention_group_is_not_refused(tmp_path: Path) -> None:
    """A refusal is sent before any thread sees a message: in a group that answers only when
    addressed, a sticker nobody sent to the bot must not get "I cannot read stickers"."""
    sticker = {
        "sticker": {
            "file_id": "s",
            "file_unique_id": "u",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        }
    }
    async with running_gateway(tmp_path, group_activation="mention") as run:
        tg = run.telegram
        quiet = tg.say_media(sticker, chat_id=GROUP, forum=False)
        asked = tg.say_media(sticker, caption="", chat_id=42, forum=False)  # a DM: refused
        await run.quiet()
        assert run.outcome(quiet) == "not-addressed"
        assert run.replies_to(quiet) == []
        assert run.replies_to(asked)[0].text.startswith("⚠️ I cannot read stickers")


async def test_a_reply_to_the_bot_is_addressed_and_gives_the_agent_its_text(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, group_activation="mention") as run:
        tg = run.telegram
        first = tg.say(f"{MENTION} name a colour", chat_id=GROUP, forum=False)
        await wait_until(lambda: run.outcome(first) == "answered")
        answer = run.replies_to(first)[0]
        follow = tg.say("why that one?", chat_id=GROUP, forum=False, reply_to=answer.message_id)
        await wait_until(lambda: run.outcome(follow) == "answered")
        assert user_texts(run)[-1] == f'[Replying to the bot: "{answer.text}"]\nwhy that one?'


async def test_a_quoted_reply_to_a_user_gives_the_quote_and_their_name(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:  # activation "always"
        tg = run.telegram
        theirs = tg.say("we ship on Friday", chat_id=GROUP, forum=False, user_id=5, first_name="Bo")
        await wait_until(lambda: run.outcome(theirs) == "answered")
        reply = tg.say("is that true?", chat_id=GROUP, forum=False, reply_to=theirs, quote="Friday")
        await wait_until(lambda: run.outcome(reply) == "answered")
        assert user_texts(run)[-1] == '[Replying to Bo: "Friday"]\nis that true?'


async def test_per_user_sessions_keep_separate_histories_and_the_chats_pace(
    tmp_path: Path,
) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    async with running_gateway(tmp_path, telegram, group_sessions="per_user") as run:
        tg = run.telegram
        ann = [tg.say("hi from ann", chat_id=GROUP, forum=False, user_id=1)]
        bob = tg.say("hi from bob", chat_id=GROUP, forum=False, user_id=2)
        await wait_until(lambda: run.outcome(ann[0]) == run.outcome(bob) == "answered", 30)
        ann.append(tg.say("ann again", chat_id=GROUP, forum=False, user_id=1))
        await wait_until(lambda: run.outcome(ann[1]) == "answered", 30)
        await run.quiet()
        assert "(turn 1 of this session)" in run.replies_to(bob)[0].text
        assert "(turn 2 of this session)" in run.replies_to(ann[1])[0].text
        keys = {child.key for child in run.gateway.thread_status().children}
        assert {ThreadKey(GROUP, None, 1), ThreadKey(GROUP, None, 2)} <= keys
        assert tg.violations == 0  # one chat's pace across both users' threads
        private = tg.say("and a DM", chat_id=1, forum=False, user_id=1)
        await wait_until(lambda: run.outcome(private) == "answered")
        assert "(turn 1 of this session)" in run.replies_to(private)[0].text


async def test_an_admin_switches_activation_which_survives_a_restart_and_others_cannot(
    tmp_path: Path,
) -> None:
    """``/activation``: from a member it is refused and changes nothing; from an admin it
    switches the group, for the members' own threads too (per-user sessions: the member's
    thread was live when the admin switched it), and the choice outlives the gateway."""
    telegram = BotAPISimulator()

    def say(text: str, user_id: int) -> int:
        return telegram.say(text, chat_id=GROUP, forum=False, user_id=user_id)

    async with running_gateway(
        tmp_path, telegram, group_activation="mention", group_sessions="per_user"
    ) as run:
        hello = say(f"{MENTION} hello", 1)
        await wait_until(lambda: run.outcome(hello) == "answered")
        refused = say("/activation always", 1)
        await wait_until(lambda: bool(run.replies_to(refused)))
        assert "admin" in run.replies_to(refused)[0].text
        chatter = say("anyone here?", 1)
        await run.quiet()
        assert run.outcome(chatter) == "not-addressed"
        switched = say("/activation always", ADMIN)
        await wait_until(lambda: bool(run.replies_to(switched)))
        await run.quiet()
        again = say("anyone now?", 1)
        await wait_until(lambda: run.outcome(again) == "answered")
    async with running_gateway(
        tmp_path, telegram, group_activation="mention", group_sessions="per_user"
    ) as run:
        later = say("and after a restart?", 2)
        await wait_until(lambda: run.outcome(later) == "answered")
        back = say("/activation mention", ADMIN)
        await wait_until(lambda: bool(run.replies_to(back)))
        await run.quiet()
        ignored = say("still there?", 2)
        await run.quiet()
        assert run.outcome(ignored) == "not-addressed"
        assert run.replies_to(ignored) == []
