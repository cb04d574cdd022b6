"""Runs the sandbox: the FastAPI app of all emulators under uvicorn, and the SMTP sink, on one state."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from channels.sandbox import (
    bigbluebutton_api,
    citizen,
    graph_api,
    jitsi,
    nominatim,
    telegram_api,
    twilio_api,
    warning_api,
    whatsapp_api,
)
from channels.sandbox.smtp_sink import AnyPortController, make_controller
from channels.sandbox.state import SandboxState

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


def create_app(state: SandboxState) -> FastAPI:
    app = FastAPI(
        title="Rathaus Hub sandbox",
        description=(
            "Local emulators of the Twilio (SMS, WhatsApp, Content), Telegram and Graph APIs, of BigBlueButton's API"
            ", of Jitsi Meet rooms secured by tokens, of a Nominatim geocoder and of the federal warning API."
        ),
        docs_url="/sandbox/docs",
        openapi_url="/sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.state.warning_feed = warning_api.WarningFeed()
    # Order matters: the Graph router ends in a catch-all for unknown /vX.Y/... paths.
    app.include_router(citizen.router)
    app.include_router(twilio_api.router)
    app.include_router(whatsapp_api.router)
    app.include_router(telegram_api.router)
    app.include_router(bigbluebutton_api.router)
    app.include_router(jitsi.router)
    app.include_router(nominatim.router)
    app.include_router(warning_api.router)
    app.include_router(graph_api.router)
    return app


class SandboxServer:
    """The HTTP emulators and the SMTP sink in background threads.

    Port 0 lets the OS choose; after start(), `url`, `http_port` and `smtp_port` hold the real
    values. Usable as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        http_port: int = 0,
        smtp_port: int = 0,
        state: SandboxState | None = None,
    ) -> None:
        self.host = host
        self.http_port = http_port
        self.smtp_port = smtp_port
        self.state = state or SandboxState()
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._smtp: AnyPortController | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.http_port}"

    def start(self) -> SandboxServer:
        config = uvicorn.Config(
            create_app(self.state),
            host=self.host,
            port=self.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="sandbox-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            # uvicorn exits its thread (SystemExit) when it cannot bind.
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"sandbox HTTP server did not start on {self.host}:{self.http_port}")
            time.sleep(0.01)
        self._uvicorn, self._thread = server, thread
        self.http_port = server.servers[0].sockets[0].getsockname()[1]

        controller = make_controller(self.state, self.host, self.smtp_port)
        try:
            controller.start()
        except BaseException:
            self.stop()
            raise
        self._smtp = controller
        self.smtp_port = controller.port
        log.debug("sandbox HTTP on %s, SMTP sink on %s:%d", self.url, self.host, self.smtp_port)
        return self

    def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=START_TIMEOUT_S)
            self._uvicorn = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(host: str = "127.0.0.1", http_port: int = 8025, smtp_port: int = 8026) -> None:
    """Run the sandbox in the foreground until Ctrl-C (the `rathaus sandbox` command)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection at INFO, the start-up probe included.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    server = SandboxServer(host, http_port, smtp_port).start()
    log.info("sandbox ready: HTTP %s, SMTP %s:%d; Ctrl-C stops it", server.url, host, server.smtp_port)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        log.info("stopping the sandbox")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
