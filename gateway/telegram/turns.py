"""Whose turn: when each request a chat sender has queued may go, and in what order.

Rules (the chat sender's order of service, ``gateway.telegram.chat_sender``):

* Final texts of ended answers first, then the reactions, then partial updates of open
  answers (drafts included), then Stop buttons due on open answers whose text is shown as
  it is (``Answer.button_at``), then drafts shown again before Telegram drops them; each
  kind in queue order (the longest waiting first).
* A final text goes at the chat's turn. A reaction or a partial update goes only while the
  group's per-minute budget keeps one request back for every open answer's final text, and
  ``PARTIAL_GRACE`` of the chat's interval after the chat's turn (a final text arriving
  meanwhile goes first); a partial update at most once per ``edit_interval`` per answer.
* A busy chat streams only its long answers. A round of the chat's open answers (one turn
  each) takes their number times the chat's interval. While a round takes longer than
  ``STREAM_CADENCE``, a partial update goes only for an answer open for at least a round:
  each answer's turn would come too seldom to show it streaming, an answer that ends
  within a round gains nothing from a partial, and a partial that takes the turn just
  before answers end holds each of their final texts back by an interval (a request cannot
  be taken back). Below that, every open answer streams.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gateway.telegram.answer import Answer
from gateway.telegram.pacing import ChatPace
from gateway.telegram.reactions import Reactions

PARTIAL_GRACE = 0.25
"""A partial update waits this much of the chat's interval beyond its turn, so that a final
text arriving meanwhile goes first (a request taken by a partial holds the chat for a whole
interval)."""
STREAM_CADENCE = 5.0
"""Seconds: the longest round of a chat's open answers (one turn each) in which all of them
stream; beyond it only answers open for a round or more do."""


def partial_from(opened_at: float, open_answers: int, send_interval: float) -> float:
    """The earliest time a partial update of an answer first queued at ``opened_at`` may go,
    with ``open_answers`` open in its chat (see the rules)."""
    round_ = open_answers * send_interval
    return -math.inf if round_ <= STREAM_CADENCE else opened_at + round_


def due(
    now: float,
    chat: ChatPace,
    queued: Iterable[Answer],
    opened: Iterable[Answer],
    reactions: Reactions,
    *,
    send_interval: float,
    edit_interval: float,
    draft_refresh: float,
) -> list[tuple[float, Answer | Reactions]]:
    """When each queued item's next request may go, in the order of service (``queued``:
    the answers queued, in queue order; ``opened``: every open answer)."""
    queued, opened = list(queued), list(opened)
    final_at = chat.ready_at(now)
    opens = chat.opens_at(now, reserve=len(opened))
    partial_at = max(now, opens + PARTIAL_GRACE * send_interval)
    due: list[tuple[float, Answer | Reactions]] = [
        (max(final_at, a.retry_at), a) for a in queued if a.final
    ]
    if reactions.pending:
        due.append((partial_at, reactions))
    due += [
        (
            max(
                partial_at,
                a.retry_at,
                a.last_request + edit_interval,
                partial_from(a.opened_at, len(opened), send_interval),
            ),
            a,
        )
        for a in queued
        if not a.final
    ]
    waiting = {a.id for a in queued}
    due += [
        (
            max(
                partial_at,
                a.retry_at,
                a.button_at,
                partial_from(a.opened_at, len(opened), send_interval),
            ),
            a,
        )
        for a in opened
        if a.id not in waiting and a.button_at < math.inf
    ]
    due += [
        (max(partial_at, a.draft_at + draft_refresh), a)
        for a in opened
        if a.id not in waiting and a.drafting and not a.final and a.draft_at > -math.inf
    ]
    return due
