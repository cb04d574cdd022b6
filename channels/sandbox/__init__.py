"""Local emulators of the providers' wire formats (Twilio, Telegram, Graph, SMTP, BigBlueButton, Jitsi, warnings).

For tests, the demo and benchmarks: `SandboxServer` runs the HTTP emulators and the SMTP sink;
`SandboxClient` drives the control and "act as a citizen" endpoints. Names are resolved lazily,
so importing the client does not load the server stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from channels.sandbox.client import SandboxClient, SandboxError
    from channels.sandbox.server import SandboxServer, create_app
    from channels.sandbox.state import SandboxState

__all__ = ["SandboxClient", "SandboxError", "SandboxServer", "SandboxState", "create_app"]

_HOMES = {
    "SandboxClient": "channels.sandbox.client",
    "SandboxError": "channels.sandbox.client",
    "SandboxServer": "channels.sandbox.server",
    "create_app": "channels.sandbox.server",
    "SandboxState": "channels.sandbox.state",
}


def __getattr__(name: str) -> Any:
    # The CLI imports only the client; loading FastAPI, uvicorn and aiosmtpd for it would be waste.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
