"""``Answer``: the rules between a stream and its chat's sender, one transition at a time."""

from __future__ import annotations

from actors.thread.records import ThreadKey
from gateway.telegram.answer import CUT_OFF, Answer, Ending

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
