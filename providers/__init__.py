"""Threadgate providers: LLM clients and the credential pool."""
