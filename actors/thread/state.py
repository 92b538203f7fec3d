"""A thread's state, and the changes to it that involve no port: the thread actor's own.

Owned by one ``ThreadActor`` (never shared); the actor saves it (``record()``) before it
says or starts anything. Nothing here awaits.
"""

from __future__ import annotations

import anyio
import attrs
from loguru import logger

from actors.thread import texts
from actors.thread.debounce import Debounce
from actors.thread.parking import Parking
from actors.thread.ports import RunRequest
from actors.thread.records import (
    RECENT_IDS,
    MediaRef,
    PendingInput,
    ThreadKey,
    ThreadPhase,
    ThreadRecord,
    ThreadStatus,
    accepted,
)
from actors.thread.run import Run
from actors.thread.slot import RunSlot


@attrs.define(eq=False)
class ThreadState:
    """Session, run slot, queue, parking, and what ``/retry`` and idempotency need."""

    key: ThreadKey
    """The thread."""
    session_id: str = ""
    """The current session."""
    generation: int = 0
    """Resets so far."""
    slot: RunSlot = attrs.field(factory=RunSlot)
    """The current run, if any."""
    queued: list[PendingInput] = attrs.field(factory=list)
    """Inputs waiting for the next turn (or for a key, when parked)."""
    parking: Parking = attrs.field(factory=Parking)
    """The parked thread's retry timer."""
    last_inputs: tuple[str, ...] = ()
    """Texts of the last turn begun (``/retry``)."""
    last_answered: bool = False
    """Whether that turn was answered."""
    model: str | None = None
    """The session's model (``/model``)."""
    recent: list[int] = attrs.field(factory=list)
    """The last accepted message ids."""
    last_media: tuple[MediaRef, ...] = ()
    """The files of the last turn begun (``/retry`` sends them again)."""
    debounce: Debounce = attrs.field(factory=Debounce)
    """The debounce window holding the queued inputs, if open."""

    @classmethod
    def restore(cls, key: ThreadKey, record: ThreadRecord | None) -> ThreadState:
        """The state ``record`` saved (a new session for a thread never seen). The run a
        restart interrupted becomes the current, orphan run."""
        record = record or ThreadRecord(session_id=texts.new_session_id())
        state = cls(
            key,
            record.session_id,
            record.generation,
            RunSlot(record.run_seq),
            list(record.queued),
            Parking(),
            record.last_inputs,
            record.last_answered,
            record.model,
            list(record.recent),
            record.last_media,
        )
        if record.in_flight:
            state.slot.recover(record.generation, record.in_flight)
        return state

    def record(self) -> ThreadRecord:
        """What to save."""
        current = self.slot.current
        return ThreadRecord(
            session_id=self.session_id,
            generation=self.generation,
            run_seq=self.slot.seq,
            in_flight=current.inputs if current is not None else (),
            queued=tuple(self.queued),
            parked=self.parking.active,
            last_inputs=self.last_inputs,
            model=self.model,
            recent=tuple(self.recent),
            last_answered=self.last_answered,
            last_media=self.last_media,
        )

    def status(self) -> ThreadStatus:
        """A snapshot."""
        run = self.slot.current
        phase = ThreadPhase.IDLE
        if run is not None:
            phase = ThreadPhase.RUNNING
        elif self.parking.active:
            phase = ThreadPhase.PARKED
        return ThreadStatus(
            key=self.key,
            phase=phase,
            session_id=self.session_id,
            generation=self.generation,
            queued=len(self.queued),
            run_age=None if run is None else anyio.current_time() - run.started_at,
        )

    @property
    def holds(self) -> bool:
        """Whether anything is running, queued or parked."""
        return self.slot.current is not None or bool(self.queued) or self.parking.active

    def accepted(self, message_id: int) -> bool:
        """Whether the thread took ``message_id`` in before (and so must not again)."""
        run = self.slot.current
        return accepted(message_id, self.recent, [*self.queued, *(run.inputs if run else ())])

    def accept(self, message_id: int) -> None:
        """Remember ``message_id`` (saved with whatever the message does)."""
        self.recent.append(message_id)
        del self.recent[:-RECENT_IDS]

    def next_run(self) -> Run | None:
        """Take everything queued into a new current run, if the thread is free to; the
        caller saves, then launches it."""
        if self.slot.current is not None or self.parking.active or not self.queued:
            return None
        inputs, self.queued = tuple(self.queued), []
        self.debounce.end()  # the run takes what the window held
        self.last_inputs = tuple(p.text for p in inputs)
        self.last_media = tuple(m for p in inputs for m in p.media)
        self.last_answered = False
        return self.slot.begin(self.generation, inputs)

    def request(self, run: Run) -> RunRequest:
        """What the agent is given for ``run`` (begun by ``next_run``)."""
        inputs = run.inputs
        return RunRequest(
            self.key,
            self.session_id,
            self.generation,
            self.last_inputs,
            self.model,
            message_ids=tuple(p.message_id for p in inputs),
            regenerate=run.regenerate,
            media=tuple(p.media for p in inputs) if any(p.media for p in inputs) else (),
            user_ids=tuple(p.user_id for p in inputs),
        )

    def cancel_run(self, why: str) -> tuple[PendingInput, ...]:
        """Cancel the current run, if any; return its inputs."""
        if self.slot.current is None:
            return ()
        run = self.slot.end()
        logger.info("thread {key}: run {id} cancelled: {why}", key=self.key, id=run.id, why=why)
        run.cancel()
        return run.inputs

    def drop_all(self, why: str) -> list[PendingInput]:
        """Cancel the run, unpark, and return every input the thread held."""
        dropped = [*self.cancel_run(why), *self.queued]
        self.queued = []
        self.debounce.end()
        if self.parking.active:
            self.parking.end()
        return dropped

    def reset(self) -> None:
        """A new session (the caller dropped what the thread held)."""
        self.generation += 1
        self.session_id = texts.new_session_id()
        self.last_inputs, self.last_answered, self.model = (), False, None
        self.last_media = ()
