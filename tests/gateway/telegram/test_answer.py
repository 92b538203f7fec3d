"""``Answer``: the rules between a stream and its chat's sender, one transition at a time."""

from __future__ import annotations

import math

from actors.thread.records import ThreadKey
from gateway.telegram.answer import (
    BUTTON_AFTER,
    CUT_OFF,
    DRAFT_REFRESH,
    Answer,
    Ending,
    Kind,
    Step,
)

KEY = ThreadKey(-100, 2)


def test_chunks_tell_the_sender_once_until_it_has_served_them() -> None:
    answer = Answer(1, KEY, None)
    assert answer.publish("one ") is True
    assert answer.publish("two ") is False  # already queued: the next request carries both
    request = answer.next_request()
    assert request is not None
    assert request[1].plain == "one two"
    answer.sent(0, 500, request[1].html, 0.0, len(answer.text))
    answer.dequeue()
    assert answer.publish("three") is True


def test_an_ending_is_always_told() -> None:
    answer = Answer(1, KEY, None)
    assert answer.publish("some text")
    assert answer.end(Ending.FINISHED) is True  # queued already, but the sender must know


def test_an_answer_ended_with_nothing_to_show_lets_its_sender_go() -> None:
    """Found in review: a whitespace chunk put the answer in its sender's open set; the
    abort settled it with nothing to show and told no one, so the sender kept it open for
    good (never passivated, and its group's budget kept a request back for it)."""
    answer = Answer(1, KEY, None)
    assert answer.publish("\n") is True
    answer.dequeue()  # the sender: nothing to show yet
    assert answer.end(Ending.ABORTED) is True
    assert answer.settled


def test_an_answer_never_told_settles_quietly() -> None:
    answer = Answer(1, KEY, None)
    assert answer.end(Ending.ABORTED) is False
    assert answer.settled


def test_a_withdrawn_answer_marks_what_is_out_cut_off_and_sends_nothing_new() -> None:
    """Found in review: with more text written than shown, the withdrawn answer's edit put
    the new text in the shown message and the cut-off mark in a piece never sent."""
    answer = Answer(1, KEY, None)
    answer.publish("x" * 3000)
    request = answer.next_request()
    assert request is not None
    answer.sent(0, 500, request[1].html, 0.0, len(answer.text))
    answer.publish(" y" * 2500)
    assert answer.withdraw() is True
    request = answer.next_request()
    assert request is not None
    index, piece = request
    assert index == 0
    assert piece.plain.startswith("x" * 3000)
    assert piece.plain.endswith(CUT_OFF.strip())
    assert "y" not in piece.plain
    answer.sent(0, 500, piece.html, 1.0, len(answer.text))
    assert answer.next_request() is None
    assert answer.settle_if_done()


def test_a_finished_answer_cancelled_while_delivered_is_aborted_after_all() -> None:
    answer = Answer(1, KEY, None)
    answer.publish("done")
    request = answer.next_request()
    assert request is not None
    answer.sent(0, 500, request[1].html, 0.0, len(answer.text))
    answer.end(Ending.FINISHED)
    assert answer.settle_if_done()
    assert answer.end(Ending.ABORTED) is True
    assert not answer.settled
    request = answer.next_request()
    assert request is not None
    assert request[1].plain.endswith(CUT_OFF.strip())


def _show(answer: Answer, now: float = 0.0) -> Step:
    """Make the next step at ``now`` as if Telegram took it (message ids 500, 501, ...), as
    the chat sender does (arming the Stop button first)."""
    answer.arm(now)
    step = answer.step()
    assert step is not None
    if step.kind is Kind.DRAFT:
        answer.drafted(step.piece.html, now)
    elif step.kind is Kind.MARKUP:
        answer.marked(step.index, step.button, now)
    else:
        mid = 500 + step.index
        answer.sent(step.index, mid, step.piece.html, now, len(answer.text), button=step.button)
    return step


def test_an_answer_with_a_run_carries_the_button_while_it_streams_only() -> None:
    answer = Answer(1, KEY, None, run_id=7)
    answer.publish("first words")
    assert _show(answer) == Step(Kind.SEND, 0, answer.pieces()[0], True)
    answer.publish(" and more")
    assert _show(answer).kind is Kind.EDIT
    answer.end(Ending.FINISHED)
    step = answer.step()
    assert step is not None
    assert (step.kind, step.button) == (Kind.MARKUP, False), "the final text is shown already"
    _show(answer)
    assert answer.step() is None
    assert answer.settle_if_done()


def test_the_button_waits_until_the_answer_has_streamed_button_after() -> None:
    answer = Answer(1, KEY, None, run_id=7)
    answer.opened(10.0)
    answer.publish("first words")
    assert answer.button_at == math.inf, "nothing shown yet: the send carries it if due"
    assert _show(answer, 10.2) == Step(Kind.SEND, 0, answer.pieces()[0], False)
    assert answer.button_at == 10.0 + BUTTON_AFTER
    answer.arm(10.0 + BUTTON_AFTER - 0.01)
    assert answer.step() is None, "not due yet"
    answer.arm(10.0 + BUTTON_AFTER)
    assert answer.button_at == math.inf
    assert _show(answer, 11.0) == Step(Kind.MARKUP, 0, answer.pieces()[0], True)
    answer.end(Ending.FINISHED)
    assert answer.button_at == math.inf
    assert _show(answer, 11.5) == Step(Kind.MARKUP, 0, answer.pieces()[0], False)
    assert answer.settle_if_done()


def test_an_answer_ended_before_button_after_never_gets_the_button() -> None:
    answer = Answer(1, KEY, None, run_id=7)
    answer.opened(10.0)
    answer.publish("quick")
    _show(answer, 10.1)
    answer.end(Ending.FINISHED)
    assert answer.button_at == math.inf
    answer.arm(20.0)  # late: the answer ended, nothing to stop
    assert answer.step() is None
    assert answer.settle_if_done()


def test_a_new_message_takes_the_button_from_the_one_before() -> None:
    answer = Answer(1, KEY, None, run_id=7)
    answer.publish("x " * 1500)
    _show(answer)
    answer.publish("y " * 2000)  # a second piece starts
    edit = _show(answer)
    assert (edit.kind, edit.index, edit.button) == (Kind.EDIT, 0, False)
    send = _show(answer)
    assert (send.kind, send.index, send.button) == (Kind.SEND, 1, True)
    answer.end(Ending.ABORTED)
    final = _show(answer)
    assert (final.kind, final.index, final.button) == (Kind.EDIT, 1, False)
    assert answer.step() is None


def test_an_answer_without_a_run_never_carries_the_button() -> None:
    answer = Answer(1, KEY, None)
    answer.publish("words")
    assert _show(answer).button is False


def test_a_drafted_answer_drafts_its_last_piece_and_sends_the_rest() -> None:
    answer = Answer(1, ThreadKey(5), 9, run_id=3)
    answer.use_drafts()
    answer.publish("x " * 1500)
    assert _show(answer).kind is Kind.DRAFT
    assert answer.visible
    assert answer.message_ids == ()
    answer.publish("y " * 2000)
    first = _show(answer)
    assert (first.kind, first.index, first.button) == (Kind.SEND, 0, False)
    assert _show(answer).kind is Kind.DRAFT, "the sent message ends the draft: drafted again"
    assert answer.step() is None
    answer.end(Ending.FINISHED)
    assert (_show(answer).kind, answer.step()) == (Kind.SEND, None)
    assert len(answer.message_ids) == 2


def test_a_stale_draft_is_shown_again_and_a_refused_one_turns_into_edits() -> None:
    answer = Answer(1, ThreadKey(5), None, run_id=3)
    answer.use_drafts()
    answer.publish("thinking")
    _show(answer, now=10.0)
    assert not answer.draft_stale(10.0 + DRAFT_REFRESH - 1)
    assert answer.draft_stale(10.0 + DRAFT_REFRESH)
    answer.forget_draft()
    assert _show(answer).kind is Kind.DRAFT
    answer.stop_drafting()
    step = answer.step()
    assert step is not None
    assert (step.kind, step.button) == (Kind.SEND, True)


def test_drafts_only_for_an_answer_with_a_run_not_yet_shown() -> None:
    without_run = Answer(1, ThreadKey(5), None)
    without_run.use_drafts()
    assert not without_run.drafting
    shown = Answer(2, ThreadKey(5), None, run_id=4)
    shown.publish("out already")
    _show(shown)
    shown.use_drafts()
    assert not shown.drafting
