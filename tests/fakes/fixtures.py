"""pytest fixtures for the provider fakes.

Load them with `pytest_plugins = ["tests.fakes.fixtures"]` in the root conftest, or import the
names into a conftest.

Each fixture yields a started fake on its own port with default credentials and the wall
clock, and stops it after the test, so tests never share a log, a script or a dedupe store.
`fake_factory(name, **kwargs)` builds one with other settings (an injected `FakeClock`, an Expo
access token, known in-app users), also stopped after the test. `fake_clock` is a `FakeClock`
at 2026-01-01T00:00:00Z.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import FAKES
from .base import Fake, FakeClock
from .expo import ExpoFake
from .fcm import FcmFake
from .onesignal import OneSignalFake
from .sendgrid import SendGridFake
from .twilio import TwilioFake
from .webhook import InboxFake, WebhookFake

FakeFactory = Callable[..., Any]


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_factory() -> Iterator[FakeFactory]:
    """`fake_factory("expo", access_token="t", clock=clock)` -> a started fake."""
    started: list[Fake] = []

    def make(name: str, **kw: Any) -> Fake:
        fake = FAKES[name](**kw).start()
        started.append(fake)
        return fake

    yield make
    for f in started:
        f.stop()


@pytest.fixture
def fcm_fake() -> Iterator[FcmFake]:
    with FcmFake() as fake:
        yield fake


@pytest.fixture
def expo_fake() -> Iterator[ExpoFake]:
    with ExpoFake() as fake:
        yield fake


@pytest.fixture
def onesignal_fake() -> Iterator[OneSignalFake]:
    with OneSignalFake() as fake:
        yield fake


@pytest.fixture
def sendgrid_fake() -> Iterator[SendGridFake]:
    with SendGridFake() as fake:
        yield fake


@pytest.fixture
def twilio_fake() -> Iterator[TwilioFake]:
    with TwilioFake() as fake:
        yield fake


@pytest.fixture
def webhook_fake() -> Iterator[WebhookFake]:
    with WebhookFake() as fake:
        yield fake


@pytest.fixture
def inapp_fake() -> Iterator[InboxFake]:
    with InboxFake() as fake:
        yield fake
