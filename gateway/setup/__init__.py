"""Setting up and checking a real bot: ``threadgate init`` and ``threadgate doctor``."""
