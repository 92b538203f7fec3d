"""Media end to end: simulated Bot API (getFile, file downloads, failing on demand) ->
aiogram -> Threadgate -> simulated LLM.

The fake model and speech-to-text servers assert what they received: image parts, the
transcript as the user turn.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from gateway.demo.botapi_files import Failure, SimFile
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator
from tests.gateway.harness import TOKEN, Running, running_gateway, wait_until

pytestmark = pytest.mark.anyio
DM = 4242


def png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def replies(run: Running, message_id: int) -> list[str]:
    return [m.text for m in run.replies_to(message_id)]


async def answered(run: Running, message_id: int) -> str:
    """The first reply to ``message_id``, once the message has its outcome."""
    await wait_until(lambda: bool(run.replies_to(message_id)) and bool(run.outcome(message_id)))
    return run.replies_to(message_id)[0].text


def photo(tg: BotAPISimulator, file: SimFile, caption: str = "", album: str = "") -> int:
    return tg.say_media(tg.files.photo(file), caption, album, chat_id=DM, forum=False)


async def test_a_photo_is_downloaded_through_getfile_by_the_run(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        file = run.telegram.files.add(png())
        message = photo(run.telegram, file, "what is this?")
        await answered(run, message)
        await run.quiet()
    assert (file.get_files, file.downloads) == (1, 1)
    assert run.outcome(message) in ("answered", "error-replied")
    assert "too big" not in replies(run, message)[0]


async def test_a_photo_reaches_the_model_as_an_image_part_with_its_caption(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as run:
        message = photo(run.telegram, run.telegram.files.add(png()), "what is this?")
        await answered(run, message)
        await run.quiet()
    assert run.outcome(message) == "answered"
    content = run.llm.requests[-1][1]["messages"][-1]["content"]
    assert isinstance(content, list), content
    kinds = [part["type"] for part in content]
    assert "image_url" in kinds
    assert any("what is this?" in part.get("text", "") for part in content)
    image = next(p for p in content if p["type"] == "image_url")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_photo_over_the_limit_is_refused_before_any_download(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, media={"max_image_bytes": 1000}) as run:
        file = run.telegram.files.add(b"x" * 2000)
        message = photo(run.telegram, file)
        text = await answered(run, message)
        big = run.telegram.files.add(b"y", declared_size=25 * 1024 * 1024)
        over_cap = photo(run.telegram, big)
        text_cap = await answered(run, over_cap)
        await run.quiet()
    assert "too big" in text
    assert "up to 1 KB" in text, text
    assert "up to 1 KB" in text_cap, "the configured limit, also under Telegram's cap"
    assert file.get_files == file.downloads == big.get_files == 0
    assert run.outcome(message) == run.outcome(over_cap) == "error-replied"
    assert not run.llm.requests, "no run, no model call"


async def test_a_file_telegram_calls_too_big_gets_a_reply(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        file = tg.files.add(b"%PDF-1.4", failure=Failure.TOO_BIG)
        message = tg.say_media(
            tg.files.document(file, "report.pdf", "application/pdf"), chat_id=DM, forum=False
        )
        text = await answered(run, message)
        await run.quiet()
    assert "document report.pdf" in text
    assert "too big" in text
    assert file.downloads == 0
    assert run.outcome(message) == "error-replied"


async def test_an_expired_file_id_gets_a_reply_and_an_outcome(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        file = run.telegram.files.add(png(), failure=Failure.EXPIRED)
        message = photo(run.telegram, file, "look")
        text = await answered(run, message)
        await run.quiet()
    assert text.startswith("⚠️ This image is no longer available from Telegram"), text
    assert run.outcome(message) == "error-replied"
    assert not run.llm.requests


@pytest.mark.slow
async def test_a_broken_download_is_tried_again_once(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg = run.telegram
        once = tg.files.add(png() * 50, failure=Failure.BREAK, failures=1)
        recovered = photo(tg, once, "first")
        await answered(run, recovered)
        twice = tg.files.add(png() * 50, failure=Failure.BREAK, failures=2)
        broken = photo(tg, twice, "second")
        text = await answered(run, broken)
        await run.quiet()
    assert once.downloads == 2
    assert "connection broke" not in replies(run, recovered)[0]
    assert twice.downloads == 2
    assert "I could not download this image from Telegram (the connection broke)" in text
    assert run.outcome(broken) == "error-replied"


@pytest.mark.slow
async def test_a_download_that_hangs_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, media={"download_timeout": 1.0}) as run:
        file = run.telegram.files.add(png(), failure=Failure.HANG)
        message = photo(run.telegram, file)
        text = await answered(run, message)
        await run.quiet()
    assert "took longer than 1 s" in text, text
    assert run.outcome(message) == "error-replied"


@pytest.mark.slow
async def test_an_album_is_one_turn_and_every_item_gets_its_outcome(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, media={"album_window": 0.5}) as run:
        tg = run.telegram
        files = [tg.files.add(png()) for _ in range(3)]
        items = [
            photo(tg, f, "compare these" if i == 0 else "", "album-1") for i, f in enumerate(files)
        ]
        after = tg.say("and this text?", chat_id=DM, forum=False)
        await answered(run, items[0])
        await answered(run, after)
        await run.quiet()
        chat = [m for m in tg.sent if m.chat_id == DM]
    assert [m.reply_to for m in chat].count(items[0]) == 1, "one answer to the album"
    assert not run.replies_to(items[1])
    assert not run.replies_to(items[2])
    first = next(i for i, m in enumerate(chat) if m.reply_to == items[0])
    later = next(i for i, m in enumerate(chat) if m.reply_to == after)
    assert first < later, "the album is answered before the message sent after it"
    outcomes = {run.outcome(i) for i in items}
    assert len(outcomes) == 1, outcomes
    assert None not in outcomes
    assert files[0].downloads == 1
    assert not run.unanswered_in_inbox()


async def test_an_albums_photos_reach_the_model_together(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, media={"album_window": 0.5}) as run:
        tg = run.telegram
        files = [tg.files.add(png()) for _ in range(3)]
        items = [photo(tg, f, "compare" if i == 0 else "", "album-2") for i, f in enumerate(files)]
        await answered(run, items[0])
        await run.quiet()
    assert run.outcome(items[0]) == "answered"
    assert [f.downloads for f in files] == [1, 1, 1]
    assert len(run.llm.requests) == 1
    content = run.llm.requests[0][1]["messages"][-1]["content"]
    assert [p["type"] for p in content].count("image_url") == 3


async def test_an_unsupported_kind_gets_a_reply_naming_what_is_supported(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        sticker = {
            "sticker": {
                "file_id": "S1",
                "file_unique_id": "s",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        }
        message = run.telegram.say_media(sticker, chat_id=DM, forum=False)
        text = await answered(run, message)
        await run.quiet()
    assert text.startswith("⚠️ I cannot read stickers. I can read text, photos"), text
    assert run.outcome(message) == "error-replied"


@pytest.mark.slow
async def test_a_restart_during_a_download_downloads_it_again(tmp_path: Path) -> None:
    telegram, llm = BotAPISimulator(), LLMSimulator()
    file = telegram.files.add(png(), failure=Failure.HANG, failures=1)
    async with running_gateway(tmp_path, telegram, llm) as run:
        message = photo(telegram, file, "look at this")
        await wait_until(lambda: file.downloads == 1)
    assert run.outcome(message) is None, "stopped mid-download: not concluded"
    async with running_gateway(tmp_path, telegram, llm) as run:
        await wait_until(lambda: run.outcome(message) is not None)
        await run.quiet()
    assert file.downloads == 2
    assert any("interrupted by a restart" in t for t in replies(run, message))


@pytest.mark.slow
async def test_an_album_held_at_a_stop_is_joined_at_the_next_start(tmp_path: Path) -> None:
    telegram, llm = BotAPISimulator(), LLMSimulator()
    files = [telegram.files.add(png()) for _ in range(2)]
    async with running_gateway(tmp_path, telegram, llm, media={"album_window": 60}) as run:
        items = [photo(telegram, f, "two" if not i else "", "album-3") for i, f in enumerate(files)]
        await wait_until(lambda: sorted(run.unanswered_in_inbox()) == items)
    async with running_gateway(tmp_path, telegram, llm) as run:
        await answered(run, items[0])
        await run.quiet()
    assert len(run.replies_to(items[0])) == 1
    assert not run.replies_to(items[1])
    assert run.outcome(items[0]) == run.outcome(items[1]) is not None
    payload = inbox_payload(run, items[0])
    assert [m["file_id"] for m in payload["media"]] == [f.file_id for f in files]


def inbox_payload(run: Running, message_id: int) -> dict[str, Any]:
    with sqlite3.connect(run.data_dir / "threadgate.sqlite3") as db:
        row = db.execute("SELECT payload FROM inbox WHERE message_id = ?", (message_id,)).fetchone()
    payload: dict[str, Any] = json.loads(row[0])
    return payload


async def test_the_file_url_and_its_token_never_reach_the_logs_or_the_user(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with running_gateway(tmp_path) as run:
        file = run.telegram.files.add(png(), failure=Failure.GONE)
        message = photo(run.telegram, file)
        text = await answered(run, message)
        await run.quiet()
    out, err = capfd.readouterr()
    assert TOKEN not in out + err + text
    assert "no longer available" in text


def voice(tg: BotAPISimulator, file: SimFile, duration: int = 3) -> int:
    return tg.say_media(tg.files.voice(file, duration), chat_id=DM, forum=False)


async def test_a_voice_note_is_transcribed_echoed_and_answered_as_text(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, stt={"base_url": "llm"}) as run:
        # The simulated speech-to-text service hears the upload's bytes as text.
        message = voice(run.telegram, run.telegram.files.add(b"what time is it"))
        await answered(run, message)
        await run.quiet()
    assert run.outcome(message) == "answered"
    [upload] = run.llm.transcriptions
    assert upload.data == b"what time is it"
    shown = run.bot_messages(DM)[-1].text
    assert shown.startswith("what time is it"), "the transcript is quoted above the answer"
    user_turn = json.dumps(run.llm.requests[-1][1]["messages"][-1]["content"])
    assert "what time is it" in user_turn, "the model is given the transcript"


async def test_a_voice_note_without_speech_to_text_is_refused_before_any_download(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as run:  # no [stt]
        file = run.telegram.files.add(b"hello")
        message = voice(run.telegram, file)
        reply = await answered(run, message)
        await run.quiet()
    assert "speech-to-text" in reply or "voice" in reply, reply
    assert run.outcome(message) == "error-replied"
    assert (file.get_files, file.downloads) == (0, 0)
    assert not run.llm.requests


async def test_a_voice_note_over_the_length_limit_is_refused_before_any_download(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, stt={"base_url": "llm", "max_seconds": 60}) as run:
        file = run.telegram.files.add(b"a very long speech")
        message = voice(run.telegram, file, duration=2 * 3600)
        reply = await answered(run, message)
        await run.quiet()
    assert "long" in reply, reply
    assert run.outcome(message) == "error-replied"
    assert (file.get_files, file.downloads) == (0, 0)
    assert not run.llm.transcriptions


async def test_a_download_that_grows_past_the_limit_is_cut_off_and_refused(tmp_path: Path) -> None:
    """Telegram said it was small (or said nothing): the limit holds while the bytes come."""
    async with running_gateway(tmp_path, media={"max_image_bytes": 2000}) as run:
        file = run.telegram.files.add(png() + b"\0" * 50_000, declared_size=100)
        message = photo(run.telegram, file)
        text = await answered(run, message)
        await run.quiet()
    assert "too big" in text, text
    assert "up to 2 KB" in text, text
    assert file.downloads == 1
    assert run.outcome(message) == "error-replied"
    assert not run.llm.requests, "nothing of it reached the model"


async def test_an_album_with_one_damaged_photo_answers_the_others_and_names_it(
    tmp_path: Path,
) -> None:
    """Found by review: one damaged item lost the whole album."""
    async with running_gateway(tmp_path, media={"album_window": 0.5}) as run:
        tg = run.telegram
        files = [tg.files.add(png()), tg.files.add(png()[:30]), tg.files.add(png())]
        items = [photo(tg, f, "compare" if i == 0 else "", "album-3") for i, f in enumerate(files)]
        await answered(run, items[0])
        await run.quiet()
    assert run.outcome(items[0]) == "answered"
    shown = run.replies_to(items[0])[-1].text
    assert shown.startswith("⚠️ image 2 of 3: "), shown
    content = run.llm.requests[-1][1]["messages"][-1]["content"]
    assert [p["type"] for p in content].count("image_url") == 2
    assert "image 2 of 3: not readable" in json.dumps(content)
