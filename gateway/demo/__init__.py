"""The local demo, and the simulators it runs on (also the tests' fake Bot API and model).

Production code imports nothing from here, except the CLI's ``demo`` command and ``run``'s
fallback when no bot token is set (``make lint`` checks it).
"""

from __future__ import annotations

from gateway.demo.walkthrough import run_demo

__all__ = ["run_demo"]
