"""Thread records as JSON, and thread keys as text: how the store writes them."""

from __future__ import annotations

import json
from typing import Any

from actors.thread import MediaKind, MediaRef, PendingInput, ThreadKey, ThreadRecord


def key_text(key: ThreadKey) -> str:
    return str(key)


def _input(pending: PendingInput) -> dict[str, Any]:
    data: dict[str, Any] = {
        "message_id": pending.message_id,
        "text": pending.text,
        "attempts": pending.attempts,
        "parked": pending.parked,
        "regenerate": pending.regenerate,
    }
    if pending.media:  # most inputs are text: their JSON stays as it was
        data["media"] = [_media(m) for m in pending.media]
    if pending.user_id is not None:  # since issue 19; older records lack both
        data["user_id"] = pending.user_id
    if pending.reacted:
        data["reacted"] = True
    return data


def _media(ref: MediaRef) -> dict[str, Any]:
    return {
        "kind": ref.kind.value,
        "file_id": ref.file_id,
        "size": ref.size,
        "mime_type": ref.mime_type,
        "file_name": ref.file_name,
        "duration": ref.duration,
    }


def _pending(data: dict[str, Any]) -> PendingInput:
    media = tuple(_ref(m) for m in data.pop("media", ()))
    return PendingInput(**data, media=media)


def _ref(data: dict[str, Any]) -> MediaRef:
    return MediaRef(**{**data, "kind": MediaKind(data["kind"])})


def media_to_json(refs: tuple[MediaRef, ...]) -> str | None:
    """A history turn's files as JSON; ``None`` (SQL NULL) for a turn without any."""
    return json.dumps([_media(m) for m in refs], separators=(",", ":")) if refs else None


def media_from_json(text: str | None) -> tuple[MediaRef, ...]:
    """The inverse of :func:`media_to_json`."""
    return tuple(_ref(m) for m in json.loads(text)) if text else ()


def record_to_json(record: ThreadRecord) -> str:
    # Written on every change of every thread: spelled out, as attrs.asdict is several times
    # slower. test_store checks that it round-trips every field.
    return json.dumps(
        {
            "session_id": record.session_id,
            "generation": record.generation,
            "run_seq": record.run_seq,
            "in_flight": [_input(p) for p in record.in_flight],
            "queued": [_input(p) for p in record.queued],
            "parked": record.parked,
            "last_inputs": list(record.last_inputs),
            "model": record.model,
            "recent": list(record.recent),
            "last_answered": record.last_answered,
            "last_media": [_media(m) for m in record.last_media],
        }
    )


def held_ids(text: str) -> frozenset[int]:
    """The message ids a record (as ``record_to_json`` wrote it) holds, in flight or queued:
    what a replay needs of it, without building the record."""
    data = json.loads(text)
    return frozenset(p["message_id"] for p in (*data["in_flight"], *data["queued"]))


def record_from_json(text: str) -> ThreadRecord:
    data = json.loads(text)
    for field in ("in_flight", "queued"):
        data[field] = tuple(_pending(p) for p in data[field])
    data["last_inputs"] = tuple(data["last_inputs"])
    data["recent"] = tuple(data.get("recent", ()))  # records written before 0.1 lack the two
    data["last_answered"] = bool(data.get("last_answered", False))
    data["last_media"] = tuple(_ref(m) for m in data.get("last_media", ()))  # since issue 20
    return ThreadRecord(**data)
