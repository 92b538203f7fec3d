"""The thread actor: alone owns one chat thread's session, run and queue.

Everything that can happen to a thread is a message handled here, one at a time, in order
(see ``actors.thread.messages``). There is no map of running agents for anyone else to leave
stale: a report from a run that is no longer the current one is ignored here, the one place
that knows which run is current.

Rules:

* At most one run at a time (``actors.thread.run``). Commands act at once; they are never
  queued behind a run.
* One write per transition: the record is saved (``ThreadStore.save``, together with the
  outcomes the transition concludes and the history of an answered turn) before anything
  is said or started, so a crash loses nothing.
* Handling is idempotent by message id: a user message or command the thread accepted
  before (the supervisor's retry after a crash) is ignored, with a log line.
* A restart resumes: the next incarnation reloads the record; the run it interrupted stays
  current (an *orphan*) until its report, if the crashed incarnation left one, or
  ``Recover`` concludes it: answered if it delivered, else retried, up to ``max_attempts``.
* Its timers (a run's keepalive and queue notice, the parked thread's retry) are messages it
  sends itself (``ActorContext.tell_later``); a tick of a run that has ended is stale.
* Every user message ends in exactly one final outcome, recorded in the store, and the user
  is told (answer, error reply, reset notice, stop notice), but for a message not addressed
  to the bot in a group that answers mentions only (``actors.thread.controls``: recorded
  ``NOT_ADDRESSED``, a debug line). ``PARKED`` comes first while no key is usable; the user
  is told once per message. Notices never crash the thread (``actors.thread.io``); a
  thread marked failed concludes what it held (``actors.thread.failure``).
* The Stop button (``StopRun``) stops the current run only, and only while it can still be
  stopped (it has not reported yet): its answer is shown cut off, and its inputs are
  concluded ``STOPPED`` when it reports (``actors.thread.turns``); the queue goes on. An
  orphan run is concluded ``STOPPED`` by ``Recover`` (or its report) instead of retried.
* Quick successive messages of one user may wait to form one turn
  (``actors.thread.debounce``); a message queued behind a run gets 👀 until it is concluded
  (``actors.thread.reactions``).

The class is split in two files: this one takes messages and commands in; its base,
``actors.thread.turns.ThreadTurns``, starts, ends, stops, parks and recovers its runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from loguru import logger

from actors import ActorContext
from actors.thread import texts
from actors.thread.failure import conclude_failed
from actors.thread.messages import (
    ActivationChanged,
    Command,
    CredentialsAvailable,
    DebounceTick,
    KeepaliveTick,
    QueueNoticeTick,
    Recover,
    Resume,
    RetryTick,
    RunFailed,
    RunFinished,
    StatusQuery,
    StopRun,
    UserMessage,
)
from actors.thread.records import Concluded, Outcome, PendingInput, ThreadStatus
from actors.thread.settings import BusyPolicy
from actors.thread.state import ThreadState
from actors.thread.turns import ThreadTurns, concluding


@attrs.define(eq=False)
class ThreadActor(ThreadTurns):
    """One chat thread. Build one per key (the supervisor's factory)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def on_start(self, ctx: ActorContext[Any]) -> None:
        record = await self._io.load()
        await self._activation.load()
        self._state = ThreadState.restore(self._key, record)
        self._reactions.restore(record.in_flight + record.queued if record else ())
        if record is not None and (record.in_flight or record.queued):
            # After anything the last incarnation left in the mailbox (its run's report):
            # a thread parked when the gateway stopped tries again now, too (its keys may be
            # back; if not, it parks again, and users told already are not told twice).
            ctx.tell_self(Recover(), control=True)

    async def on_failed(self, undelivered: Sequence[object]) -> Sequence[object]:
        return await conclude_failed(self._io, self._settings, undelivered)

    def can_passivate(self) -> bool:
        return not self._state.holds

    def wants(self, message: object) -> bool:
        # "Credentials available" concerns a parked thread only: the others would wake for
        # nothing (a task each, with thousands of threads live); an activation, its own
        # conversation's threads only.
        if isinstance(message, ActivationChanged):
            return self._activation.concerns(message)
        return not isinstance(message, CredentialsAvailable) or self._state.parking.active

    def describe(self) -> Mapping[str, object]:
        return texts.describe(self.status())

    def status(self) -> ThreadStatus:
        """Return a snapshot of this thread."""
        return attrs.evolve(self._state.status(), activation=self._activation.mode)

    # -- messages --------------------------------------------------------------------------

    async def receive(self, message: object, ctx: ActorContext[Any]) -> object:
        slot = self._state.slot
        match message:
            case UserMessage() | Command() if self._state.accepted(message.message_id):
                logger.info(
                    "thread {key}: message {id} was handled already (retried after a crash)",
                    key=self._key,
                    id=message.message_id,
                )
            case UserMessage():
                self._state.accept(message.message_id)
                await self._on_user(message, ctx)
            case Command():
                self._state.accept(message.message_id)
                await self._on_command(message, ctx)
            case RunFinished() | RunFailed() if not slot.is_current(message.run_id):
                slot.settle()  # a cancelled run has unwound: let go of it
                logger.info(
                    "thread {key}: ignored the report of stale run {id} (generation {gen})",
                    key=self._key,
                    id=message.run_id,
                    gen=message.generation,
                )
            case RunFinished():
                await self._on_finished(ctx)
            case RunFailed():
                await self._on_failed(message, ctx)
            case Recover():
                await self._recover(ctx)
            case StopRun():
                return self._stop_run(message)
            case ActivationChanged():
                self._activation.changed(message)  # other conversations' are ignored
            case DebounceTick() if self._state.debounce.current(message):
                self._state.debounce.end()
                await self._advance(ctx)
            case DebounceTick():
                pass  # a window that a later message extended, or that closed early
            case RetryTick() if not self._state.parking.current(message):
                pass  # a tick of an earlier parking
            case CredentialsAvailable() | RetryTick() if self._state.parking.active:
                await self._unpark(ctx)
            case CredentialsAvailable() | RetryTick():
                pass  # not parked: nothing waits for credentials
            case KeepaliveTick() | QueueNoticeTick() if not slot.is_current(message.run_id):
                pass  # that run has ended (its timers were cancelled, this one was on its way)
            case KeepaliveTick():
                self._state.slot.keepalive(self._settings.keepalive_interval, ctx)
            case QueueNoticeTick():
                await self._io.notice(texts.STILL_WORKING, reply_to=message.message_id)
            case Resume():
                pass  # waking the actor reloaded its record and resumed its work
            case StatusQuery():
                return self.status()
            case _:
                logger.error(
                    "thread {key}: unknown message {kind} ignored",
                    key=self._key,
                    kind=type(message).__name__,
                )
        return None

    async def _on_user(
        self,
        message: UserMessage,
        ctx: ActorContext[Any],
        *,
        regenerate: bool = False,
        command: bool = False,
    ) -> None:
        if not self._activation.answers(message):
            concluded = Concluded(message.message_id, Outcome.NOT_ADDRESSED, "not addressed")
            await self._save([concluded])
            return
        pending = PendingInput(
            message.message_id,
            message.text,
            regenerate=regenerate,
            media=message.media,
            user_id=message.user_id,
        )
        running, debounce = self._state.slot.current, self._state.debounce
        interrupt = self._settings.busy_policy is BusyPolicy.INTERRUPT
        if running is not None and interrupt and not running.stopping:
            self._state.queued[:0] = self._state.cancel_run("interrupted by a new message")
            self._state.queued.append(pending)
            await self._advance(ctx)
        elif len(self._state.queued) >= self._settings.max_queued:
            await self._save(concluding([pending], Outcome.ERROR_REPLIED, "queue full"))
            text = texts.queue_full(len(self._state.queued))
            await self._io.notice(text, reply_to=message.message_id)
        elif running is not None:
            pending = self._reactions.mark(pending)
            self._state.queued.append(pending)
            await self._save()
            self._reactions.show(pending)
            # Said only if the run still goes on by then; at most once per run.
            self._state.slot.notice_in(self._settings.queue_notice_delay, pending.message_id, ctx)
        elif self._state.parking.active:
            self._state.queued.append(pending)
            await self._save(concluding([pending], Outcome.PARKED, "waiting for credentials"))
            await self._io.notice(texts.NO_KEY_NOW, reply_to=message.message_id)
        elif self._settings.debounce > 0 and not command and debounce.extends(message.user_id):
            self._state.queued.append(pending)
            await self._save()
            debounce.hold(message.user_id, self._settings.debounce, ctx)
        else:  # (another user's message, or a command's input, ends a debounce window)
            self._state.queued.append(pending)
            await self._advance(ctx)

    async def _on_command(self, command: Command, ctx: ActorContext[Any]) -> None:
        name = command.name
        if name in self._settings.reset_commands:
            await self._reset(command, ctx)
        elif name == "stop":
            answering, queued = self._state.slot.current is not None, len(self._state.queued)
            dropped = self._state.drop_all("stopped")
            reply = texts.stopped(answering=answering, queued=queued)
            await self._answer(command, reply, concluding(dropped, Outcome.STOPPED, "/stop"))
        elif name == "status":
            await self._answer(command, texts.status_text(self.status()))
        elif name in ("help", "start"):
            group = self._activation.group
            await self._answer(command, texts.help_text(self._settings.reset_commands, group=group))
        elif name == "activation":
            await self._answer(command, await self._activation.command(command))
        elif name == "model":
            allowed = self._settings.allowed_models
            chosen, reply = texts.model_reply(allowed, self._state.model, command.args.strip())
            self._state.model = chosen or self._state.model
            await self._answer(command, reply)
        elif name == "retry" and self._state.slot.current is not None:
            await self._answer(command, texts.RUN_IN_PROGRESS)
        elif name == "retry" and not self._state.last_inputs:
            await self._answer(command, texts.NOTHING_TO_RETRY)
        elif name == "retry":  # the last turn's input again; an answered turn is replaced
            text = "\n\n".join(self._state.last_inputs)
            message = UserMessage(
                command.message_id, text, command.user_id, media=self._state.last_media
            )
            await self._on_user(message, ctx, regenerate=self._state.last_answered, command=True)
        else:  # not ours: the agent may know it (skills)
            skill = UserMessage(
                command.message_id, f"/{name} {command.args}".strip(), command.user_id
            )
            await self._on_user(skill, ctx, command=True)

    async def _reset(self, command: Command, ctx: ActorContext[Any]) -> None:
        dropped = self._state.drop_all("reset")
        self._state.reset()
        concluded = concluding(dropped, Outcome.DISCARDED_BY_RESET, f"/{command.name}")
        if command.args:  # a reset skill with input: it is the new session's first message
            first = PendingInput(command.message_id, command.args, user_id=command.user_id)
            self._state.queued.append(first)
        else:
            concluded.append(Concluded(command.message_id, Outcome.ANSWERED, f"/{command.name}"))
        run = self._state.next_run()
        await self._save(concluded)
        logger.info(
            "thread {key}: reset by /{cmd} to generation {gen}; {n} input(s) discarded",
            key=self._key,
            cmd=command.name,
            gen=self._state.generation,
            n=len(dropped),
        )
        await self._io.notice(texts.new_session(len(dropped)), reply_to=command.message_id)
        self._launch(run, ctx)

    async def _answer(
        self, command: Command, text: str, concluded: Sequence[Concluded] = ()
    ) -> None:
        """Reply to a command: that reply is its outcome, saved with ``concluded``."""
        answered = Concluded(command.message_id, Outcome.ANSWERED, f"/{command.name}")
        await self._save([*concluded, answered])
        await self._io.notice(text, reply_to=command.message_id)
