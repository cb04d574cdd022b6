"""The `hub` fixture lives in tests/conftest.py (the fault tests share it); these names stay importable here."""

from tests.running_hub import DEMO_ADMIN, REPO, Hub, free_port, wait_for

__all__ = ["DEMO_ADMIN", "REPO", "Hub", "free_port", "wait_for"]
