"""Files users send, on the gateway's side: the checks answered before a run (``checks``),
albums collected into one turn (``albums``), the download through the Bot API (``fetch``),
and the agent wrapper that turns a run's references into content parts (``runner``).
Reading the bytes is ``providers.media``.
"""
