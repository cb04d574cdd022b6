"""A small httpx client for the sandbox's /sandbox/... endpoints, used by the CLI and the tests."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx


class SandboxError(RuntimeError):
    """The sandbox refused a request; `status_code` and `detail` say what it answered."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"sandbox answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


class SandboxClient:
    """One method per control or citizen endpoint; each returns the parsed JSON answer."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        response = self._http.request(
            method,
            f"/sandbox{path}",
            json=dict(json) if json is not None else None,
            params=_drop_none(params or {}),
        )
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise SandboxError(response.status_code, detail)
        return response.json()

    # Control

    def healthz(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    def register_account(
        self,
        kind: str,
        config: Mapping[str, Any],
        secrets: Mapping[str, Any],
        webhook_url: str | None = None,
    ) -> dict[str, Any]:
        """Set up a provider account; for facebook the answer's "verified" says whether the
        hub answered the subscription handshake."""
        body = {
            "kind": kind,
            "webhook_url": webhook_url,
            "config": dict(config),
            "secrets": dict(secrets),
        }
        return self._call("POST", "/accounts", body)

    def accounts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/accounts")["items"]

    def outbox(self, kind: str | None = None, to: str | None = None, since: str | None = None) -> list[dict[str, Any]]:
        params = {"kind": kind, "to": to, "since": since}
        return self._call("GET", "/outbox", params=params)["items"]

    def outbox_summary(self) -> dict[str, dict[str, Any]]:
        """Per kind: count, first_at and last_at of the messages citizens received."""
        return self._call("GET", "/outbox/summary")

    def meetings(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The video rooms (kind "bigbluebutton" or "jitsi"), each with its "attendees" and whether it is "running"."""
        return self._call("GET", "/meetings", params={"kind": kind})["items"]

    def meeting(self, kind: str, meeting_id: str) -> dict[str, Any]:
        """One video room by its id; SandboxError 404 if nobody created or entered it."""
        found = [item for item in self.meetings(kind) if item["meeting_id"] == meeting_id]
        if not found:
            raise SandboxError(404, f"no {kind} meeting {meeting_id!r}")
        return found[0]

    # The federal warning API

    def publish_warning(self, *, headline: str, region_keys: Iterable[str], provider: str = "MOWAS",
                        severity: str = "Severe", **fields: Any) -> dict[str, Any]:  # fmt: skip
        """A new official warning (fields: description, instruction, area, geometry, status, urgency, certainty);
        answers its "id" and "version"."""
        body = {"headline": headline, "region_keys": list(region_keys), "provider": provider, "severity": severity}
        return self._call("POST", "/warnings", {**body, **fields})

    def update_warning(self, warning_id: str, **changes: Any) -> dict[str, Any]:
        """The warning's next version, msgType Update (changes: severity, headline, description, instruction)."""
        return self._call("POST", f"/warnings/{warning_id}/update", changes)

    def cancel_warning(self, warning_id: str) -> dict[str, Any]:
        """The warning's next version, msgType Cancel: the all-clear."""
        return self._call("POST", f"/warnings/{warning_id}/cancel", {})

    def withdraw_warning(self, warning_id: str) -> dict[str, Any]:
        """Takes the warning off the dashboards, as when it expires."""
        return self._call("DELETE", f"/warnings/{warning_id}")

    def set_warning_fault(self, mode: str | None) -> dict[str, Any]:
        """ "error": the API answers 503; "partial": details come without their info; None: all well again."""
        return self._call("PUT", "/warnings/fault", {"mode": mode})

    def pending_callbacks(self) -> int:
        """Status callbacks the sandbox has yet to post to the hub."""
        return int(self._call("GET", "/callbacks")["pending"])

    def discard_callbacks(self) -> int:
        return int(self._call("DELETE", "/callbacks")["discarded"])

    def clear_outbox(self) -> dict[str, Any]:
        return self._call("DELETE", "/outbox")

    def wait_for_outbox(
        self,
        count: int = 1,
        kind: str | None = None,
        to: str | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` matching items are there; raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.outbox(kind=kind, to=to)
            if len(items) >= count:
                return items
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(items)} of {count} outbox items after {timeout} s")
            time.sleep(0.05)

    def set_faults(
        self,
        kind: str | None = None,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        latency_ms: int = 0,
        permanent_to: Iterable[str] = (),
        undelivered_to: Iterable[str] = (),
        ignore_window: bool = False,
        seed: int | None = None,
        answer_latency_ms: int = 0,
    ) -> dict[str, Any]:
        body = {
            "kind": kind,
            "rate_429": rate_429,
            "rate_5xx": rate_5xx,
            "latency_ms": latency_ms,
            "permanent_to": list(permanent_to),
            "undelivered_to": list(undelivered_to),
            "answer_latency_ms": answer_latency_ms,
            "ignore_window": ignore_window,
            "seed": seed,
        }
        return self._call("POST", "/faults", body)

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/reset")

    # Acting as a citizen

    def send_sms(self, from_: str, body: str, to: str | None = None, media_urls: Iterable[str] = ()) -> dict[str, Any]:
        payload = _drop_none({"from": from_, "to": to, "body": body})
        payload["media_urls"] = list(media_urls)
        return self._call("POST", "/twilio/sms", payload)

    def send_whatsapp(
        self,
        from_: str,
        body: str = "",
        to: str | None = None,
        *,
        profile_name: str = "Erika Mustermann",
        media_urls: Iterable[str] = (),
        location: tuple[float, float] | None = None,
        label: str | None = None,
        address: str | None = None,
        button_payload: str | None = None,
        button_text: str | None = None,
        hours_ago: float = 0.0,
    ) -> dict[str, Any]:
        """Write to the town's WhatsApp number as `from_`; `hours_ago` backdates the window it opens."""
        payload = _drop_none(
            {
                "from": from_, "to": to, "body": body, "profile_name": profile_name,
                "latitude": location[0] if location else None, "longitude": location[1] if location else None,
                "label": label, "address": address, "button_payload": button_payload, "button_text": button_text,
                "hours_ago": hours_ago,
            }
        )  # fmt: skip
        payload["media_urls"] = list(media_urls)
        return self._call("POST", "/whatsapp/message", payload)

    def whatsapp_template(self, body: str, language: str = "de", phone_number: str | None = None) -> str:
        """An approved template (its {{1}} carries the text) for the WhatsApp number; returns its content SID."""
        payload = _drop_none({"body": body, "language": language, "phone_number": phone_number})
        return str(self._call("POST", "/whatsapp/templates", payload)["content_sid"])

    def send_telegram(
        self,
        chat_id: int,
        text: str,
        bot_username: str | None = None,
        bot_token: str | None = None,
        first_name: str = "Erika",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "de",
        photo: bytes | None = None,
    ) -> dict[str, Any]:
        """Write to the bot; with `photo` (JPEG bytes) the text is its caption, the file kept for getFile."""
        payload = _drop_none(
            {
                "chat_id": chat_id,
                "text": text,
                "photo_base64": base64.b64encode(photo).decode() if photo is not None else None,
                "bot_username": bot_username,
                "bot_token": bot_token,
                "first_name": first_name,
                "last_name": last_name,
                "username": username,
                "language_code": language_code,
            }
        )
        return self._call("POST", "/telegram/message", payload)

    def press_telegram_button(
        self,
        chat_id: int,
        data: str,
        message_id: int | None = None,
        bot_username: str | None = None,
        bot_token: str | None = None,
        first_name: str = "Erika",
    ) -> dict[str, Any]:
        """Press an inline button under the bot's message `message_id` (default: the latest)."""
        payload = _drop_none(
            {
                "chat_id": chat_id,
                "data": data,
                "message_id": message_id,
                "bot_username": bot_username,
                "bot_token": bot_token,
                "first_name": first_name,
            }
        )
        return self._call("POST", "/telegram/callback", payload)

    def telegram_answered(
        self, chat_id: int | None = None, bot_username: str | None = None, bot_token: str | None = None
    ) -> list[dict[str, Any]]:
        """The button presses the bot has answered with answerCallbackQuery (in one chat, given chat_id)."""
        params = {"chat_id": chat_id, "bot_username": bot_username, "bot_token": bot_token}
        return self._call("GET", "/telegram/answered", params=params)["items"]

    def block_telegram(
        self, chat_id: int, bot_username: str | None = None, bot_token: str | None = None
    ) -> dict[str, Any]:
        payload = _drop_none({"chat_id": chat_id, "bot_username": bot_username, "bot_token": bot_token})
        return self._call("POST", "/telegram/block", payload)

    def unblock_telegram(
        self, chat_id: int, bot_username: str | None = None, bot_token: str | None = None
    ) -> dict[str, Any]:
        payload = _drop_none({"chat_id": chat_id, "bot_username": bot_username, "bot_token": bot_token})
        return self._call("POST", "/telegram/unblock", payload)

    def send_messenger(
        self,
        psid: str,
        text: str,
        page_id: str | None = None,
        quick_reply_payload: str | None = None,
        timestamp_ms: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> dict[str, Any]:
        """Write to the Page; to tap a quick reply, pass its title as `text` and its payload.

        `first_name` and `last_name` are what the Page's User Profile API answers for `psid` from then on.
        """
        payload = _drop_none(
            {
                "psid": psid,
                "text": text,
                "page_id": page_id,
                "quick_reply_payload": quick_reply_payload,
                "timestamp_ms": timestamp_ms,
                "first_name": first_name,
                "last_name": last_name,
            }
        )
        return self._call("POST", "/facebook/message", payload)

    def post_comment(
        self,
        from_id: str,
        from_name: str,
        post_id: str,
        message: str,
        page_id: str | None = None,
        parent_id: str | None = None,
    ) -> dict[str, Any]:
        payload = _drop_none(
            {
                "from_id": from_id,
                "from_name": from_name,
                "post_id": post_id,
                "message": message,
                "page_id": page_id,
                "parent_id": parent_id,
            }
        )
        return self._call("POST", "/facebook/comment", payload)

    def send_email(
        self,
        from_: str,
        text: str,
        subject: str = "",
        to: str | None = None,
        from_name: str | None = None,
        charset: str = "utf-8",
        transfer_encoding: str = "quoted-printable",
        in_reply_to: str | None = None,
        references: Iterable[str] = (),
        attachments: Iterable[tuple[str, str, bytes]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Mail the hub; attachments are (filename, content_type, data) triples."""
        payload = _drop_none(
            {
                "from": from_,
                "from_name": from_name,
                "to": to,
                "subject": subject,
                "text": text,
                "charset": charset,
                "transfer_encoding": transfer_encoding,
                "in_reply_to": in_reply_to,
            }
        )
        payload["references"] = list(references)
        payload["attachments"] = [
            {
                "filename": filename,
                "content_type": content_type,
                "data_base64": base64.b64encode(data).decode("ascii"),
            }
            for filename, content_type, data in attachments
        ]
        payload["headers"] = dict(headers or {})
        return self._call("POST", "/email", payload)

    def send_raw_email(self, to: str, mail_from: str, raw: bytes | str) -> dict[str, Any]:
        """Deliver exact bytes (bare LF becomes CRLF); mail_from "" is the null sender <>."""
        payload: dict[str, Any] = {"to": to, "mail_from": mail_from}
        if isinstance(raw, bytes):
            payload["raw_base64"] = base64.b64encode(raw).decode("ascii")
        else:
            payload["raw"] = raw
        return self._call("POST", "/email/raw", payload)
