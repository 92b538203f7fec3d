"""Thread records as JSON, and thread keys as text: how the store writes them."""

from __future__ import annotations

import json
from typing import Any

from actors.thread import PendingInput, ThreadKey, ThreadRecord


def key_text(key: ThreadKey) -> str:
    return str(key)


def _input(pending: PendingInput) -> dict[str, Any]:
    return {
        "message_id": pending.message_id,
        "text": pending.text,
        "attempts": pending.attempts,
        "parked": pending.parked,
        "regenerate": pending.regenerate,
    }


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
        }
    )


def record_from_json(text: str) -> ThreadRecord:
    data = json.loads(text)
    for field in ("in_flight", "queued"):
        data[field] = tuple(PendingInput(**p) for p in data[field])
    data["last_inputs"] = tuple(data["last_inputs"])
    data["recent"] = tuple(data.get("recent", ()))  # records written before 0.1 lack the two
    data["last_answered"] = bool(data.get("last_answered", False))
    return ThreadRecord(**data)
