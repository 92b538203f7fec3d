"""Example agents, shipped to show the ``threadgate.agents`` plug-in protocol."""
