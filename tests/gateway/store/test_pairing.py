"""Pairing in the store: codes (shape, expiry, repeats, limits), approvals and revocations."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from gateway.exceptions import PairedUserUnknownError, PairingCodeUnknownError
from gateway.store.fence import Connection
from gateway.store.pairing import (
    ALPHABET,
    LENGTH,
    MAX_LIVE_PER_USER,
    MAX_PENDING,
    RENEW_BEFORE,
    REPLY_INTERVAL,
    VALIDITY,
    Issue,
    Pairings,
    approve_code,
    issue_code,
    new_code,
    read_approved,
    read_pending,
    revoke_user,
)
from gateway.store.sqlite import Store
from tests.gateway.store.conftest import Location, raw

T0 = 1_800_000_000.0


@pytest.fixture
def db(location: Location) -> Iterator[Connection]:
    Store(location).close()  # the schema
    with raw(location) as connection:
        yield connection


def test_codes_are_eight_unambiguous_characters_and_differ() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == LENGTH
        assert set(code) <= set(ALPHABET)
    assert not set("0O1IL") & set(ALPHABET)
    assert len(ALPHABET) == 31
    used = set("".join(codes))
    assert used == set(ALPHABET), "every symbol is drawn"


def test_a_stranger_writing_again_gets_the_same_code_at_most_once_a_minute(
    db: Connection,
) -> None:
    first = issue_code(db, 5, 5, "Eve", T0)
    assert first.issue is Issue.NEW
    assert first.expires_at == T0 + VALIDITY
    assert issue_code(db, 5, 5, "Eve", T0 + REPLY_INTERVAL - 1).issue is Issue.QUIET
    again = issue_code(db, 5, 5, "Eve", T0 + REPLY_INTERVAL)
    assert (again.issue, again.code) == (Issue.REPEATED, first.code)
    assert issue_code(db, 5, 5, "Eve", T0 + REPLY_INTERVAL + 30).issue is Issue.QUIET
    assert [p.code for p in read_pending(db, T0 + 100)] == [first.code]


def test_a_code_near_its_end_is_renewed_and_an_expired_one_pruned(db: Connection) -> None:
    first = issue_code(db, 5, 5, "Eve", T0)
    renewed = issue_code(db, 5, 5, "Eve", first.expires_at - RENEW_BEFORE + 1)
    assert renewed.issue is Issue.NEW
    assert renewed.code != first.code
    live = read_pending(db, first.expires_at - 1)
    assert {p.code for p in live} == {first.code, renewed.code}, "the old one still counts"
    later = renewed.expires_at - RENEW_BEFORE - 1  # the first one expired meanwhile
    assert issue_code(db, 5, 5, "Eve", later).issue is Issue.REPEATED
    (rows,) = db.execute("SELECT COUNT(*) FROM pairing_codes").fetchone()
    assert rows == 1, "the expired code was deleted by that issue"


def test_no_user_holds_more_than_three_live_codes(db: Connection) -> None:
    for index in range(MAX_LIVE_PER_USER):  # near their end, all of them
        db.execute(
            "INSERT INTO pairing_codes VALUES (?, 5, 5, 'Eve', ?, ?, ?)",
            (f"CODE{index}XYZ", T0, T0 + 100 + index, T0),
        )
    issued = issue_code(db, 5, 5, "Eve", T0 + REPLY_INTERVAL)
    assert (issued.issue, issued.code) == (Issue.REPEATED, f"CODE{MAX_LIVE_PER_USER - 1}XYZ")
    assert len(read_pending(db, T0 + REPLY_INTERVAL)) == MAX_LIVE_PER_USER


def test_past_the_cap_nobody_new_gets_a_code_until_some_expire(db: Connection) -> None:
    for user in range(1, MAX_PENDING + 1):
        assert issue_code(db, user, user, "", T0).issue is Issue.NEW
    assert issue_code(db, 99_999, 99_999, "late", T0 + 1).issue is Issue.FULL
    again = issue_code(db, 1, 1, "", T0 + REPLY_INTERVAL)
    assert again.issue is Issue.REPEATED, "a stranger holding a code still gets it"
    assert issue_code(db, 99_999, 99_999, "late", T0 + VALIDITY).issue is Issue.NEW


def test_approval_is_case_insensitive_admits_the_user_and_spends_their_codes(
    db: Connection,
) -> None:
    code = issue_code(db, 5, 5, "Eve (@eve)", T0).code
    user = approve_code(db, f" {code.lower()[:4]}-{code.lower()[4:]} ", T0 + 10)
    assert (user.user_id, user.name, user.code) == (5, "Eve (@eve)", code)
    assert read_pending(db, T0 + 10) == []
    assert [u.user_id for u in read_approved(db)] == [5]
    assert issue_code(db, 5, 5, "Eve", T0 + 20).issue is Issue.APPROVED
    with pytest.raises(PairingCodeUnknownError):
        approve_code(db, code, T0 + 30)  # spent


def test_an_expired_or_unknown_code_is_refused(db: Connection) -> None:
    code = issue_code(db, 5, 5, "Eve", T0).code
    with pytest.raises(PairingCodeUnknownError) as raised:
        approve_code(db, code, T0 + VALIDITY)
    assert raised.value.code == code
    with pytest.raises(PairingCodeUnknownError):
        approve_code(db, "ABCDEFGH", T0)
    assert read_approved(db) == []


def test_revoking_removes_the_user_and_an_unknown_one_is_an_error(db: Connection) -> None:
    approve_code(db, issue_code(db, 5, 5, "Eve", T0).code, T0)
    assert revoke_user(db, 5).user_id == 5
    assert read_approved(db) == []
    with pytest.raises(PairedUserUnknownError) as raised:
        revoke_user(db, 5)
    assert raised.value.user_id == 5
    assert issue_code(db, 5, 5, "Eve", T0 + 1).issue is Issue.NEW, "a stranger again"


@pytest.mark.anyio
async def test_through_the_store_two_messages_at_once_get_one_code(location: Location) -> None:
    store = Store(location)
    pairings = Pairings(store)
    try:
        results = []

        async def issue() -> None:
            results.append(await pairings.issue(5, 5, "Eve", T0))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(issue)
        assert sorted(r.issue.value for r in results) == ["new", "quiet", "quiet", "quiet"]
        stranger = await pairings.stranger(5, T0 + 1)
        assert (stranger.approved, stranger.replied_at) == (False, T0)
        [code] = [r.code for r in results if r.issue is Issue.NEW]
        assert (await pairings.approve(code.lower(), T0 + 2)).user_id == 5
        assert await pairings.is_approved(5)
        assert (await pairings.stranger(5, T0 + 3)).approved
        assert [u.user_id for u in await pairings.approved()] == [5]
        assert await pairings.pending(T0 + 3) == []
        await pairings.revoke(5)
        assert not await pairings.is_approved(5)
    finally:
        store.close()
