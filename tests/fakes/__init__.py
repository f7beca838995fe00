"""Faithful local fakes of the HTTP providers (reference/providers.md §1.7), for adapter tests.

Each fake is a `ThreadingHTTPServer` on 127.0.0.1 with the provider's strict validation,
error shapes and magic inputs, a script queue of forced answers and faults, and a request log.
Start one with `with FcmFake() as fcm: ...`, the pytest fixtures in `tests.fakes.fixtures`, or
by hand: `python -m tests.fakes fcm --port 8901`.
"""

from __future__ import annotations

from .base import (
    DROP_AFTER_BODY,
    HTML_502,
    Delay,
    Drop,
    Fake,
    FakeClock,
    LoggedRequest,
    Request,
    Response,
)
from .expo import ExpoFake
from .fcm import FcmFake
from .onesignal import OneSignalFake
from .sendgrid import SendGridFake
from .twilio import TwilioFake
from .webhook import InboxFake, WebhookFake

FAKES: dict[str, type[Fake]] = {
    "fcm": FcmFake,
    "expo": ExpoFake,
    "onesignal": OneSignalFake,
    "sendgrid": SendGridFake,
    "twilio": TwilioFake,
    "webhook": WebhookFake,
    "inapp": InboxFake,
}

__all__ = [
    "DROP_AFTER_BODY",
    "FAKES",
    "HTML_502",
    "Delay",
    "Drop",
    "ExpoFake",
    "Fake",
    "FakeClock",
    "FcmFake",
    "InboxFake",
    "LoggedRequest",
    "OneSignalFake",
    "Request",
    "Response",
    "SendGridFake",
    "TwilioFake",
    "WebhookFake",
]
