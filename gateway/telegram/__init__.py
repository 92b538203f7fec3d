"""Telegram: updates in (polling or webhook, intake, routing, re-sequencing) and messages out
(one chat sender actor per chat, the thread actor's ``Outbox``, Markdown as Telegram HTML)."""
