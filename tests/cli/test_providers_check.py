"""`mcrm providers check`: every provider type verified against its fake without a message
being delivered (the fakes' logs hold no send, the SMTP server received nothing, the file
outbox was not created); failures are rows with a one-line problem and hint (wrong SMTP
password, wrong SendGrid key, a refused FCM key, nothing listening, an unset ${VAR}, a
private webhook target, a malformed secret) and exit 1; a config error in providers: exits
2; no secret, token or address ever reaches stdout or stderr."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import WS, Cli, CliResult, WorkspaceFactory
from tests.fakes.expo import ExpoFake
from tests.fakes.fcm import FcmFake
from tests.fakes.fixtures import FakeFactory
from tests.fakes.onesignal import OneSignalFake
from tests.fakes.rs256 import generate_key
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.smtp import SmtpFake
from tests.fakes.twilio import TwilioFake
from tests.fakes.webhook import InboxFake, WebhookFake

SMTP_USER, SMTP_PASSWORD = "mailer@shop.test", "smtp-pass-7f3a9c"
EXPO_TOKEN = "expo-access-token-3b8e1d"
SENDER = "Shop <news@shop.test>"


@pytest.fixture
def smtp_server() -> Iterator[SmtpFake]:
    with SmtpFake(SMTP_USER, SMTP_PASSWORD) as s:
        yield s


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ws(workspace: WorkspaceFactory, providers: dict[str, Any]) -> WS:
    return workspace({"providers": providers})


def check(cli: Cli, w: WS, *names: str, env: dict[str, str | None] | None = None) -> CliResult:
    return cli(w, "providers", "check", *names, "--format", "json", env=env)


def by_name(r: CliResult) -> dict[str, dict[str, Any]]:
    return {row["provider"]: row for row in r.json()}


def assert_hidden(r: CliResult, *values: str) -> None:
    for v in values:
        assert v not in r.stdout and v not in r.stderr, f"{v!r} was printed"


def smtp_conf(server: SmtpFake, password: str = SMTP_PASSWORD) -> dict[str, Any]:
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": server.port,
        "starttls": False,
        "username": SMTP_USER,
        "password": password,
        "from": SENDER,
    }


def fcm_conf(fake: FcmFake, tmp_path: Path, info: dict[str, Any] | None = None) -> dict[str, Any]:
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps(info or fake.service_account_info()))
    return {
        "type": "fcm",
        "service_account": str(sa),
        "base_url": fake.url,
        "token_uri": fake.token_uri,
    }


def webhook_conf(fake: WebhookFake, **kw: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"type": "webhook", "channels": ["email"], **fake.credentials()}
    conf.setdefault("allow_private_targets", True)
    conf.update(kw)
    return conf


def test_every_type_passes_against_its_fake_and_nothing_is_delivered(
    workspace: WorkspaceFactory,
    cli: Cli,
    tmp_path: Path,
    smtp_server: SmtpFake,
    fcm_fake: FcmFake,
    fake_factory: FakeFactory,
    onesignal_fake: OneSignalFake,
    sendgrid_fake: SendGridFake,
    twilio_fake: TwilioFake,
    webhook_fake: WebhookFake,
    inapp_fake: InboxFake,
) -> None:
    expo: ExpoFake = fake_factory("expo", access_token=EXPO_TOKEN)
    tw = twilio_fake.credentials()
    w = make_ws(
        workspace,
        {
            "outbox": {"type": "file", "channels": ["sms"], "path": "out/deep/outbox.jsonl"},
            "mail": smtp_conf(smtp_server),
            "hook": webhook_conf(webhook_fake),
            "inbox": {"type": "inapp", "allow_private_targets": True, **inapp_fake.credentials()},
            "fcm": fcm_conf(fcm_fake, tmp_path),
            "expo": {"type": "expo", **expo.credentials()},
            "onesignal": {"type": "onesignal", **onesignal_fake.credentials()},
            "sendgrid": {"type": "sendgrid", "from": SENDER, **sendgrid_fake.credentials()},
            "twilio": {
                "type": "twilio",
                "base_url": tw["base_url"],
                "account_sid": tw["account_sid"],
                "auth_token": tw["auth_token"],
                "messaging_service_sid": tw["messaging_service_sid"],
            },
        },
    )
    r = check(cli, w)
    assert r.exit_code == 0, r.stdout + r.stderr
    rows = by_name(r)
    assert list(rows) == [
        "outbox",
        "mail",
        "hook",
        "inbox",
        "fcm",
        "expo",
        "onesignal",
        "sendgrid",
        "twilio",
    ]
    assert {row["status"] for row in rows.values()} == {"ok"}
    assert all(row["problem"] is None for row in rows.values())
    assert list(r.json()[0]) == ["provider", "type", "channels", "status", "checked", "problem"]
    assert rows["hook"]["channels"] == "email" and rows["fcm"]["channels"] == "push"
    assert "9 provider(s) checked: 9 ok, 0 failed" in r.stderr

    # what each check says it verified
    assert "directory of out/deep/outbox.jsonl created" in rows["outbox"]["checked"]
    assert rows["mail"]["checked"] == f"connect 127.0.0.1:{smtp_server.port}; EHLO; AUTH; QUIT"
    assert "secret format" in rows["hook"]["checked"] and "TCP" in rows["hook"]["checked"]
    assert "no HTTP request" in rows["inbox"]["checked"]
    assert "OAuth2 access token" in rows["fcm"]["checked"]
    assert "validate_only message accepted" in rows["fcm"]["checked"]
    assert "access token accepted" in rows["expo"]["checked"]
    assert "API key and app_id" in rows["onesignal"]["checked"]
    assert "sandbox" in rows["sendgrid"]["checked"]
    assert "credentials not verified" in rows["twilio"]["checked"]

    # nothing was delivered anywhere
    assert (w.root / "out" / "deep").is_dir()
    assert list((w.root / "out" / "deep").iterdir()) == []
    assert smtp_server.messages == []
    assert webhook_fake.log == [] and webhook_fake.deliveries == []
    assert inapp_fake.log == [] and inapp_fake.deliveries == []
    assert fcm_fake.sent == []
    sends = fcm_fake.requests_to("send")
    assert len(sends) == 1 and sends[0].parsed["validate_only"] is True
    assert expo.sent == [] and [e.route for e in expo.log] == ["receipts"]
    assert expo.log[0].parsed == {"ids": []}
    assert onesignal_fake.notifications == [] and onesignal_fake.log[0].status == 400
    assert sendgrid_fake.sent == []
    sg = sendgrid_fake.log
    assert len(sg) == 1 and sg[0].status == 200
    assert sg[0].parsed["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert sg[0].parsed["personalizations"][0]["to"][0]["email"].endswith("@example.com")
    assert twilio_fake.log == [] and twilio_fake.messages == []

    assert_hidden(
        r,
        SMTP_PASSWORD,
        SMTP_USER,
        "news@shop.test",
        EXPO_TOKEN,
        "ya29.",
        "PRIVATE KEY",
        fcm_fake.client_email,
        onesignal_fake.api_key,
        sendgrid_fake.api_key,
        tw["auth_token"],
        webhook_fake.secrets[0],
        webhook_fake.url + "/hook",
    )


def test_table_output_and_named_providers(
    workspace: WorkspaceFactory, cli: Cli, sendgrid_fake: SendGridFake
) -> None:
    w = make_ws(
        workspace,
        {
            "outbox": {"type": "file"},
            "sendgrid": {"type": "sendgrid", "from": SENDER, **sendgrid_fake.credentials()},
        },
    )
    r = check(cli, w, "sendgrid")
    assert r.exit_code == 0, r.stderr
    assert list(by_name(r)) == ["sendgrid"]
    r = cli(w, "providers", "check", "outbox", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "provider,type,channels,status,checked,problem"
    assert r.stdout.splitlines()[1] == (
        'outbox,file,"push,email,sms,inapp",ok,'
        "directory of .mcrm/outbox.jsonl created; directory writable,"
    )
    assert not (w.root / ".mcrm" / "outbox.jsonl").exists()


def test_a_file_outbox_whose_directory_cannot_be_made(
    workspace: WorkspaceFactory, cli: Cli
) -> None:
    w = make_ws(workspace, {"outbox": {"type": "file", "path": "blocker/outbox.jsonl"}})
    w.write("blocker", "a file, not a directory")
    r = check(cli, w)
    assert r.exit_code == 1
    row = by_name(r)["outbox"]
    assert row["status"] == "FAIL"
    assert row["problem"].startswith("cannot create the directory of blocker/outbox.jsonl: ")
    assert "hint: create it, or set path: to a writable place" in row["problem"]


def test_wrong_smtp_password(workspace: WorkspaceFactory, cli: Cli, smtp_server: SmtpFake) -> None:
    bad = "not-the-password-41c2"
    w = make_ws(workspace, {"mail": smtp_conf(smtp_server, password=bad)})
    r = check(cli, w)
    assert r.exit_code == 1, r.stderr
    row = by_name(r)["mail"]
    assert row["status"] == "FAIL"
    assert row["problem"] == "AUTH refused (535); hint: check username: and password:"
    assert row["checked"] == f"connect 127.0.0.1:{smtp_server.port}; EHLO"
    assert smtp_server.messages == []
    assert "1 provider(s) checked: 0 ok, 1 failed" in r.stderr
    assert_hidden(r, bad, SMTP_PASSWORD, SMTP_USER, "news@shop.test")


def test_wrong_sendgrid_key(
    workspace: WorkspaceFactory, cli: Cli, sendgrid_fake: SendGridFake
) -> None:
    bad = "SG.wrong-key-id.wrong-key-secret-000000"
    w = make_ws(
        workspace,
        {
            "sendgrid": {
                "type": "sendgrid",
                "from": SENDER,
                "base_url": sendgrid_fake.url,
                "api_key": bad,
            }
        },
    )
    r = check(cli, w)
    assert r.exit_code == 1
    row = by_name(r)["sendgrid"]
    assert row["status"] == "FAIL"
    assert row["problem"].startswith("SendGrid refused the API key (401)")
    assert sendgrid_fake.sent == [] and [e.status for e in sendgrid_fake.log] == [401]
    assert_hidden(r, bad, sendgrid_fake.api_key, "news@shop.test")


def test_wrong_fcm_key_is_refused_by_the_token_endpoint(
    workspace: WorkspaceFactory, cli: Cli, fcm_fake: FcmFake, tmp_path: Path
) -> None:
    info = fcm_fake.service_account_info()
    info["private_key"] = generate_key("some-other-service-account").private_pem()
    w = make_ws(workspace, {"fcm": fcm_conf(fcm_fake, tmp_path, info)})
    r = check(cli, w)
    assert r.exit_code == 1
    row = by_name(r)["fcm"]
    assert row["status"] == "FAIL"
    assert row["problem"].startswith(
        "the token endpoint refused the service account (invalid_grant: Invalid JWT Signature.)"
    )
    assert "hint: " in row["problem"]
    assert row["checked"] == "service-account file"
    assert [e.route for e in fcm_fake.log] == ["token"]  # no message request at all
    assert fcm_fake.sent == []
    assert_hidden(r, "PRIVATE KEY", fcm_fake.client_email)


def test_nothing_listening(
    workspace: WorkspaceFactory, cli: Cli, sendgrid_fake: SendGridFake
) -> None:
    port = free_port()
    w = make_ws(
        workspace,
        {
            "mail": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "starttls": False,
                "from": SENDER,
            },
            "sendgrid": {
                "type": "sendgrid",
                "from": SENDER,
                "api_key": sendgrid_fake.api_key,
                "base_url": f"http://127.0.0.1:{port}",
            },
        },
    )
    r = check(cli, w)
    assert r.exit_code == 1
    rows = by_name(r)
    for name in ("mail", "sendgrid"):
        assert rows[name]["status"] == "FAIL"
        assert rows[name]["problem"].startswith(
            f"nothing listening on 127.0.0.1:{port} (connection refused); hint: "
        )
    assert rows["sendgrid"]["checked"] == ""
    assert_hidden(r, sendgrid_fake.api_key)


def test_an_unset_variable_fails_that_provider_only(
    workspace: WorkspaceFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVIDERS_CHECK_SG_KEY", raising=False)
    w = make_ws(
        workspace,
        {
            "sendgrid": {
                "type": "sendgrid",
                "from": SENDER,
                "api_key": "${PROVIDERS_CHECK_SG_KEY}",
            },
            "outbox": {"type": "file"},
        },
    )
    r = check(cli, w)
    assert r.exit_code == 1
    rows = by_name(r)
    assert rows["outbox"]["status"] == "ok"
    assert rows["sendgrid"]["status"] == "FAIL"
    assert rows["sendgrid"]["problem"] == (
        "environment variable PROVIDERS_CHECK_SG_KEY is not set (mcrm.yaml / providers.sendgrid)"
        "; hint: export PROVIDERS_CHECK_SG_KEY=... or write ${PROVIDERS_CHECK_SG_KEY:-default}"
    )
    # set, it is expanded and the check goes on (here: to the network, which is closed)
    port = free_port()
    w = make_ws(
        workspace,
        {
            "sendgrid": {
                "type": "sendgrid",
                "from": SENDER,
                "api_key": "${PROVIDERS_CHECK_SG_KEY}",
                "base_url": f"http://127.0.0.1:{port}",
            }
        },
    )
    r = check(cli, w, env={"PROVIDERS_CHECK_SG_KEY": "SG.from-the-env-9d1e"})
    row = by_name(r)["sendgrid"]
    assert row["checked"] == "${VARS} set" and "nothing listening" in row["problem"]
    assert_hidden(r, "SG.from-the-env-9d1e")


def test_a_private_webhook_target_needs_allow_private_targets(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake
) -> None:
    w = make_ws(workspace, {"hook": webhook_conf(webhook_fake, allow_private_targets=False)})
    r = check(cli, w)
    assert r.exit_code == 1
    row = by_name(r)["hook"]
    assert row["status"] == "FAIL"
    assert row["problem"] == (
        "127.0.0.1 resolves to a private address (127.0.0.1); "
        "hint: set allow_private_targets: true if that is intended"
    )
    assert webhook_fake.log == []
    assert_hidden(r, webhook_fake.secrets[0], webhook_fake.url + "/hook")


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (
            "whsec_" + base64.b64encode(b"k" * 8).decode(),
            "secret decodes to 8 bytes, not 24 to 64",
        ),
        ("whsec_this is not base64!!", "secret is not whsec_ followed by base64"),
        (base64.b64encode(b"k" * 32).decode(), "secret does not start with whsec_"),
    ],
)
def test_a_malformed_webhook_secret(
    workspace: WorkspaceFactory, cli: Cli, webhook_fake: WebhookFake, secret: str, problem: str
) -> None:
    w = make_ws(workspace, {"hook": webhook_conf(webhook_fake, secret=secret)})
    r = check(cli, w)
    assert r.exit_code == 1
    row = by_name(r)["hook"]
    assert row["status"] == "FAIL"
    assert row["problem"].startswith(problem + "; hint: ")
    assert webhook_fake.log == []
    assert_hidden(r, secret)


def test_other_refused_credentials(
    workspace: WorkspaceFactory,
    cli: Cli,
    fake_factory: FakeFactory,
    onesignal_fake: OneSignalFake,
    twilio_fake: TwilioFake,
) -> None:
    expo: ExpoFake = fake_factory("expo", access_token=EXPO_TOKEN)
    tw = twilio_fake.credentials()
    w = make_ws(
        workspace,
        {
            "expo": {"type": "expo", "base_url": expo.url, "access_token": "expo-wrong-token"},
            "expo_none": {"type": "expo", "base_url": expo.url},
            "onesignal": {
                "type": "onesignal",
                "base_url": onesignal_fake.url,
                "app_id": onesignal_fake.app_id,
                "api_key": "os_v2_app_wrongwrongwrong",
            },
            "onesignal_app": {
                "type": "onesignal",
                "base_url": onesignal_fake.url,
                "app_id": "00000000-0000-4000-8000-000000000000",
                "api_key": onesignal_fake.api_key,
            },
            "twilio": {
                "type": "twilio",
                "base_url": tw["base_url"],
                "account_sid": tw["account_sid"],
                "auth_token": "short-token",
                "from": tw["from"],
            },
        },
    )
    r = check(cli, w)
    assert r.exit_code == 1
    rows = by_name(r)
    assert {row["status"] for row in rows.values()} == {"FAIL"}
    assert rows["expo"]["problem"].startswith("Expo refused the access token (UNAUTHORIZED)")
    assert "set access_token:" in rows["expo_none"]["problem"]
    assert rows["onesignal"]["problem"].startswith("OneSignal refused the API key (403)")
    assert rows["onesignal_app"]["problem"].startswith("OneSignal does not know app_id")
    assert rows["twilio"]["problem"].startswith("auth_token is not 32 hex digits")
    assert expo.sent == [] and onesignal_fake.notifications == [] and twilio_fake.log == []
    assert_hidden(r, "expo-wrong-token", "os_v2_app_wrongwrongwrong", "short-token", tw["from"])


def test_a_config_error_in_providers_exits_2(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make_ws(workspace, {"outbox": {"type": "file"}, "push": {"type": "fcmm"}})
    r = check(cli, w)
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("mcrm: error: provider 'push': unknown type 'fcmm'")
    assert "hint: did you mean 'fcm'?" in r.stderr


def test_an_unknown_name_exits_2(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = make_ws(workspace, {"outbox": {"type": "file"}})
    r = check(cli, w, "outbx")
    assert r.exit_code == 2 and r.stdout == ""
    assert "no provider named 'outbx'" in r.stderr and "did you mean 'outbox'?" in r.stderr


def test_no_providers(workspace: WorkspaceFactory, cli: Cli) -> None:
    w = workspace(yaml.safe_dump({"timezone": "UTC"}))
    r = check(cli, w)
    assert r.exit_code == 0 and r.json() == []
    assert "no providers" in r.stderr
