"""`mcrm providers check`: each provider entry's credentials and reachability, verified
without sending a message.

One check per provider type, each a short sequence of steps; the first step that fails is the
entry's problem (one line, with a hint), and the steps that passed are what it `checked`:

- **file** — the path's directory exists or is created, and is writable (the file itself is
  opened for appending if it exists, else a test file is written next to it and removed).
- **smtp** — connect, EHLO, STARTTLS and AUTH when configured, QUIT; never MAIL FROM.
- **webhook / inapp** — the URL passes the SSRF guard, every secret is `whsec_` + base64 of
  24–64 bytes, and the URL's host:port accepts a TCP connection. No HTTP request: the
  receiver would take any signed POST for a message.
- **fcm** — the service-account file is readable and complete, an OAuth2 access token is
  obtained from `token_uri` (google-auth, through the adapter), the `base_url` host is
  reachable, and a `validate_only` message to a topic is accepted: FCM validates it (token,
  project, permission) and delivers nothing.
- **expo** — TCP, then `getReceipts` with no ids (reads nothing; checks the access token
  when one is configured, and that enhanced push security does not need one otherwise).
- **onesignal** — `app_id` is a UUID, TCP, then a notification request with the `app_id`
  and nothing else (no audience, no content): the key and the app are checked (401/403,
  "app_id not found") and the request is refused for its missing audience, so nothing can
  be created.
- **sendgrid** — a mail send in sandbox mode (`mail_settings.sandbox_mode.enable`), to a
  placeholder recipient on the reserved example.com domain: validated with the key (200),
  never delivered.
- **twilio** — the credentials' shapes (`AC…`/`SK…` SIDs, token lengths, sender) and TCP.
  The credentials themselves are not verified: no request is made.

Problems and hints never carry secrets, tokens or addresses: values of secret-looking
options, URLs and sender addresses are masked in every text a check returns. A `${VAR}` that
is unset is that provider's problem, not an error of the command.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mcrm.dispatch.providers import ProviderConf, load_providers
from mcrm.errors import ConfigError, McrmError, UsageError, Where, did_you_mean

if TYPE_CHECKING:
    from mcrm.config import Workspace

CONNECT_TIMEOUT_S = 5.0
HTTP_TIMEOUT = (5.0, 15.0)
SMTP_TIMEOUT_S = 15.0
PLACEHOLDER_RECIPIENT = "mcrm-providers-check@example.com"  # RFC 2606: never a mailbox
FCM_CHECK_TOPIC = "mcrm-providers-check"
MASK = "****"

# values shown nowhere, besides those under secret-looking keys (mcrm.config.SECRET_RE)
_PRIVATE_OPTIONS = {"url", "from", "reply_to", "username", "status_callback"}

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ALPHA_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one provider's check."""

    name: str
    type: str
    channels: tuple[str, ...]
    ok: bool
    checked: tuple[str, ...]
    problem: str | None = None
    hint: str | None = None

    COLUMNS = ("provider", "type", "channels", "status", "checked", "problem")

    def row(self) -> list[Any]:
        """The output row: provider, type, channels, status (ok / FAIL), checked, problem
        (with its hint)."""
        problem = self.problem
        if problem and self.hint:
            problem = f"{problem}; hint: {self.hint}"
        return [
            self.name,
            self.type,
            ",".join(self.channels),
            "ok" if self.ok else "FAIL",
            "; ".join(self.checked),
            problem,
        ]


class _Fail(Exception):
    def __init__(self, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.hint = problem, hint


class _Steps:
    """What a check has verified so far."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def ok(self, what: str) -> None:
        self.done.append(what)


Checker = Callable[["Workspace", str, dict[str, Any], _Steps], None]


# --- the entry point -------------------------------------------------------------------------


def check_providers(
    ws: Workspace,
    names: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    *,
    debug: bool = False,
) -> list[CheckResult]:
    """Check every provider entry of mcrm.yaml (or the named ones, in file order). A
    structural error of `providers:` (unknown type, bad channels) raises ConfigError, an
    unknown name UsageError; everything else is a result. `debug` re-raises unexpected
    exceptions instead of reporting them."""
    confs = load_providers(ws)
    if names:
        known = [c.name for c in confs]
        for n in names:
            if n not in known:
                raise UsageError(
                    f"no provider named '{n}' in mcrm.yaml",
                    hint=did_you_mean(n, known)
                    or (f"providers: {', '.join(known)}" if known else "providers: is empty"),
                )
        confs = [c for c in confs if c.name in set(names)]
    environ = dict(os.environ) if env is None else env
    if len(confs) <= 1:
        return [check_provider(ws, c, environ, debug=debug) for c in confs]
    with ThreadPoolExecutor(min(8, len(confs)), thread_name_prefix="providers-check") as pool:
        return list(pool.map(lambda c: check_provider(ws, c, environ, debug=debug), confs))


def check_provider(
    ws: Workspace, conf: ProviderConf, env: dict[str, str], *, debug: bool = False
) -> CheckResult:
    """Check one provider entry; never raises for a problem of the entry itself."""
    from mcrm.config import ENV_RE, expand_env

    steps = _Steps()
    hidden: list[str] = []
    problem: str | None = None
    hint: str | None = None
    try:
        opts = expand_env(conf.options, env, Where("mcrm.yaml", None, f"providers.{conf.name}"))
        hidden = _private_values(opts)
        if ENV_RE.search(json.dumps(conf.options, default=str)):
            steps.ok("${VARS} set")
        CHECKS[conf.type](ws, conf.name, opts, steps)
    except _Fail as f:
        problem, hint = f.problem, f.hint
    except McrmError as e:  # a bad option (ConfigError), a bad duration (UsageError)
        problem = _strip_name(e.message, conf.name)
        if e.where is not None:
            problem += f" ({e.where})"
        hint = e.hint
    except Exception as e:
        if debug:
            raise
        problem = f"the check failed unexpectedly ({type(e).__name__})"
        hint = "rerun with --debug for the traceback"
    return CheckResult(
        conf.name,
        conf.type,
        conf.channels,
        problem is None,
        tuple(_mask(s, hidden) for s in steps.done),
        _mask(problem, hidden) if problem is not None else None,
        _mask(hint, hidden) if hint is not None else None,
    )


# --- shared steps ----------------------------------------------------------------------------


def _private_values(opts: Any, key: str = "") -> list[str]:
    """Every option value no output may show: secrets (by key name), URLs, addresses."""
    from mcrm.config import SECRET_RE

    out: list[str] = []
    if isinstance(opts, dict):
        for k, v in opts.items():
            out += _private_values(v, str(k))
    elif isinstance(opts, list):
        for v in opts:
            out += _private_values(v, key)
    elif isinstance(opts, str) and (SECRET_RE.search(key) or key in _PRIVATE_OPTIONS):
        out.append(opts)
        addr = parseaddr(opts)[1]
        if "@" in addr:
            out.append(addr)
    # longest first, so a value containing another is masked whole
    return sorted({v for v in out if len(v) >= 4}, key=len, reverse=True)


def _mask(text: str, hidden: Iterable[str]) -> str:
    for v in hidden:
        text = text.replace(v, MASK)
    return text


def _strip_name(message: str, name: str) -> str:
    """The adapters' messages start with `provider 'NAME'`; the row names it already."""
    for prefix in (f"provider '{name}': ", f"provider '{name}' "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoint(url: str, what: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; the URL itself is never shown."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _Fail(f"{what} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Fail(f"{what} is not an http(s) URL")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _tcp(host: str, port: int, steps: _Steps) -> None:
    """A TCP connection to host:port, closed at once (no byte sent)."""
    hp = _host_port(host, port)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except socket.gaierror:
        raise _Fail(f"cannot resolve {host}", "check the host name and DNS") from None
    except ConnectionRefusedError:
        raise _Fail(
            f"nothing listening on {hp} (connection refused)", "check the host and port"
        ) from None
    except TimeoutError:
        raise _Fail(
            f"no answer from {hp} within {CONNECT_TIMEOUT_S:g} s",
            "a firewall may drop the connection; check the host and port",
        ) from None
    except OSError as e:
        raise _Fail(f"cannot connect to {hp}: {e.strerror or type(e).__name__}") from None
    steps.ok(f"TCP {hp}")


_TRANSPORT = {
    "connect_failed": "cannot connect to {hp}",
    "connect_timeout": "no connection to {hp} within 5 s",
    "tls": "TLS failed with {hp} (certificate not trusted?)",
    "read_timeout": "no answer from {hp} in time",
    "connection_lost": "{hp} closed the connection without an answer",
    "proxy_auth": "the proxy refused its credentials (407) for {hp}",
    "proxy_refused": "the proxy refused to connect to {hp}",
}


def _request(http: Any, method: str, url: str, hp: str, **kw: Any) -> Any:
    """An HTTP request of a check; a transport failure is the check's problem."""
    from mcrm.dispatch.http import transport_outcome

    try:
        return http.request(method, url, timeout=HTTP_TIMEOUT, allow_redirects=False, **kw)
    except Exception as e:
        _, code = transport_outcome(e)
        text = _TRANSPORT.get(code, "request to {hp} failed ({code})")
        raise _Fail(text.format(hp=hp, code=code), "check base_url and the network") from None


def _status_problem(service: str, status: int, hp: str) -> _Fail:
    """A generic unexpected answer of an HTTP API."""
    if 300 <= status < 400:
        return _Fail(f"{service} answered a redirect ({status})", "check base_url")
    if status in (404, 405):
        return _Fail(f"{service} has no such endpoint ({status})", f"is {hp} the API's host?")
    if status == 429:
        return _Fail(f"{service} is rate-limiting this key (429)", "try again later")
    if status >= 500:
        return _Fail(f"{service} answered {status}", "a provider outage; try again later")
    return _Fail(f"{service} answered {status}")


# --- file ------------------------------------------------------------------------------------


def _check_file(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.providers import FileOutbox

    outbox = FileOutbox(ws, name, opts)
    path = outbox.path
    shown = _shown_path(ws, path)
    folder = path.parent
    if folder.is_dir():
        steps.ok(f"directory of {shown} exists")
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _Fail(
                f"cannot create the directory of {shown}: {e.strerror or type(e).__name__}",
                "create it, or set path: to a writable place",
            ) from None
        steps.ok(f"directory of {shown} created")
    if path.is_dir():
        raise _Fail(f"{shown} is a directory", "path: names the JSON-lines file")
    try:
        if path.exists():
            with path.open("a", encoding="utf-8"):
                pass  # opened for appending, nothing written
            steps.ok(f"{shown} appendable")
        else:
            fd, probe = tempfile.mkstemp(prefix=".mcrm-check-", dir=folder)
            try:
                os.write(fd, b"{}\n")
            finally:
                os.close(fd)
                os.unlink(probe)
            steps.ok("directory writable")
    except OSError as e:
        raise _Fail(
            f"cannot write to {shown}: {e.strerror or type(e).__name__}",
            "check the permissions, or set path: to a writable place",
        ) from None


def _shown_path(ws: Workspace, path: Path) -> str:
    try:
        return str(path.relative_to(ws.root))
    except ValueError:
        return str(path)


# --- smtp ------------------------------------------------------------------------------------


def _check_smtp(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    import smtplib
    import ssl

    from mcrm.dispatch.smtp import Smtp

    a = Smtp(name, opts)
    hp = _host_port(a.host, a.port)
    timeout = min(a.timeout, SMTP_TIMEOUT_S)

    def context() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not a.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def tls_fail(e: ssl.SSLError) -> _Fail:
        reason = getattr(e, "verify_message", None) or getattr(e, "reason", None) or "handshake"
        return _Fail(
            f"TLS with {hp} failed ({reason})",
            "fix the server certificate, or tls_verify: false for a test relay",
        )

    conn: smtplib.SMTP | None = None
    try:
        try:
            if a.ssl:
                conn = smtplib.SMTP_SSL(a.host, a.port, timeout=timeout, context=context())
            else:
                conn = smtplib.SMTP(a.host, a.port, timeout=timeout)
        except socket.gaierror:
            raise _Fail(f"cannot resolve {a.host}", "check host:") from None
        except ConnectionRefusedError:
            raise _Fail(
                f"nothing listening on {hp} (connection refused)", "check host: and port:"
            ) from None
        except TimeoutError:
            raise _Fail(f"no greeting from {hp} within {timeout:g} s", "check port:") from None
        except ssl.SSLError as e:
            raise tls_fail(e) from None
        except smtplib.SMTPConnectError as e:
            raise _Fail(f"{hp} refused the connection ({e.smtp_code})") from None
        except (OSError, smtplib.SMTPException) as e:
            raise _Fail(f"cannot connect to {hp} ({_smtp_reason(e)})") from None
        steps.ok(f"connect {hp}" + (" (TLS)" if a.ssl else ""))
        stage = "EHLO"
        try:
            code, _ = conn.ehlo()
            if code != 250:
                raise _Fail(f"EHLO refused ({code})")
            steps.ok("EHLO")
            if a.starttls:
                stage = "STARTTLS"
                try:
                    conn.starttls(context=context())
                except smtplib.SMTPNotSupportedError:
                    raise _Fail(
                        "the server does not offer STARTTLS",
                        "use ssl: true (port 465), or starttls: false only for a local relay",
                    ) from None
                conn.ehlo()
                steps.ok("STARTTLS")
            if a.username:
                stage = "AUTH"
                try:
                    conn.login(str(a.username), str(a.password or ""))
                except smtplib.SMTPAuthenticationError as e:
                    raise _Fail(
                        f"AUTH refused ({e.smtp_code})", "check username: and password:"
                    ) from None
                except smtplib.SMTPNotSupportedError:
                    raise _Fail(
                        "the server does not offer AUTH"
                        + ("" if a.starttls or a.ssl else " (it may need STARTTLS first)"),
                        "remove username: and password:, or enable TLS",
                    ) from None
                steps.ok("AUTH")
            else:
                steps.ok("no AUTH configured")
        except ssl.SSLError as e:
            raise tls_fail(e) from None
        except smtplib.SMTPServerDisconnected:
            raise _Fail(f"the server closed the connection at {stage}") from None
        except (OSError, smtplib.SMTPException) as e:
            raise _Fail(f"{stage} failed ({_smtp_reason(e)})") from None
        try:
            conn.quit()
            steps.ok("QUIT")
        except (OSError, smtplib.SMTPException):
            pass  # everything that matters was verified
        conn = None
    finally:
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


def _smtp_reason(e: BaseException) -> str:
    code = getattr(e, "smtp_code", None)
    if code is not None:
        return str(code)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return type(e).__name__


# --- webhook, inapp --------------------------------------------------------------------------


def _check_webhook(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    _webhook(name, opts, steps, inapp=False)


def _check_inapp(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    _webhook(name, opts, steps, inapp=True)


def _webhook(name: str, opts: dict[str, Any], steps: _Steps, *, inapp: bool) -> None:
    from mcrm.dispatch.http import check_target
    from mcrm.dispatch.webhook import Webhook

    url = opts.get("url")
    if not isinstance(url, str) or not url:
        raise _Fail("needs url:", "the receiver's https URL")
    host, port = _endpoint(url, "url")
    allow = bool(opts.get("allow_private_targets"))
    try:
        check_target(url, allow, "url")
    except ConfigError as e:
        raise _Fail(e.message.removeprefix("url: "), e.hint) from None
    steps.ok("SSRF guard skipped (allow_private_targets)" if allow else "SSRF guard")
    secrets = opts.get("secrets") or ([opts["secret"]] if opts.get("secret") else [])
    if not isinstance(secrets, list) or not secrets:
        raise _Fail("needs secret: whsec_<base64> (Standard Webhooks)")
    for i, s in enumerate(secrets):
        which = "secret" if len(secrets) == 1 and "secrets" not in opts else f"secrets[{i}]"
        _webhook_secret(s, which)
    steps.ok("secret format" if len(secrets) == 1 else f"{len(secrets)} secrets' format")
    Webhook(name, opts, inapp=inapp).close()  # the remaining options
    _tcp(host, port, steps)
    steps.ok("no HTTP request (it would be taken for a message)")


def _webhook_secret(secret: Any, which: str) -> None:
    hint = "a Standard Webhooks secret is whsec_ followed by base64 of 24 to 64 random bytes"
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise _Fail(f"{which} does not start with whsec_", hint)
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        raise _Fail(f"{which} is not whsec_ followed by base64", hint) from None
    if not 24 <= len(key) <= 64:
        raise _Fail(f"{which} decodes to {len(key)} bytes, not 24 to 64", hint)


# --- fcm -------------------------------------------------------------------------------------


def _check_fcm(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.fcm import Fcm, _TokenFailure, fcm_error_code
    from mcrm.dispatch.http import json_or_none

    info = Fcm._service_account(name, opts.get("service_account"), ws.root)
    where = Where("mcrm.yaml", None, f"providers.{name}.service_account")
    if info.get("type") not in (None, "service_account"):
        raise ConfigError(
            f"service_account is a '{info.get('type')}' key, not a service account's",
            hint="download a key of the service account (IAM → Service accounts → Keys)",
            where=where,
        )
    missing = [f for f in ("client_email", "private_key") if not info.get(f)]
    if not info.get("token_uri") and not opts.get("token_uri"):
        missing.append("token_uri")
    if not info.get("project_id") and not opts.get("project_id"):
        missing.append("project_id")
    if missing:
        raise ConfigError(
            f"the service-account file lacks {', '.join(missing)}",
            hint="download the key again, or set the option of the same name",
            where=where,
        )
    a = Fcm(name, opts, root=ws.root)
    try:
        steps.ok("service-account file")
        token_uri = str(opts.get("token_uri") or info["token_uri"])
        try:
            token = a._access_token()
        except _TokenFailure as f:
            raise _token_problem(f.code, f.detail, token_uri) from None
        steps.ok("OAuth2 access token")
        host, port = _endpoint(a.url, "base_url")
        hp = _host_port(host, port)
        _tcp(host, port, steps)
        body = {"validate_only": True, "message": {"topic": FCM_CHECK_TOPIC}}
        resp = _request(
            a.http,
            "POST",
            a.url,
            hp,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        st = resp.status_code
        if 200 <= st < 300:
            steps.ok("validate_only message accepted (project, permission)")
            return
        code, status, _, _ = fcm_error_code(json_or_none(resp))
        key = code or status or str(st)
        if st == 401:
            raise _Fail(f"FCM refused the access token ({key})", "check the service account")
        if st == 403:
            raise _Fail(
                f"FCM denied the project to this service account ({key})",
                "check project_id, and that the account may send with Firebase Cloud Messaging",
            )
        if st == 404:
            raise _Fail(
                f"FCM does not know project or endpoint ({key})", "check project_id and base_url"
            )
        raise _status_problem("FCM", st, hp)
    finally:
        a.close()


def _token_problem(code: str, detail: str | None, token_uri: str) -> _Fail:
    what = code.removeprefix("oauth:")
    try:
        host, port = _endpoint(token_uri, "token_uri")
        hp = _host_port(host, port)
    except _Fail:
        hp = "token_uri"
    if what in _TRANSPORT:
        return _Fail(_TRANSPORT[what].format(hp=hp), "check token_uri and the network")
    if what.isdigit():
        return _Fail(f"the token endpoint {hp} answered {what}", "try again later")
    text = f"{what}: {detail}" if detail else what
    return _Fail(
        f"the token endpoint refused the service account ({text})",
        "the key may be revoked or not this account's (create a new key), or the clock is off",
    )


# --- expo ------------------------------------------------------------------------------------


def _check_expo(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.expo import RECEIPTS_PATH, Expo

    a = Expo(name, opts)
    try:
        host, port = _endpoint(a.base, "base_url")
        hp = _host_port(host, port)
        _tcp(host, port, steps)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if a.access_token:
            headers["Authorization"] = f"Bearer {a.access_token}"
        resp = _request(
            a.http, "POST", a.base + RECEIPTS_PATH, hp, data=b'{"ids":[]}', headers=headers
        )
        failure = a.request_failure(resp)
        if failure is None:
            steps.ok(
                "getReceipts with no ids"
                + (" (access token accepted)" if a.access_token else " (no access_token needed)")
            )
            return
        _, code, _, _ = failure
        st = resp.status_code
        if code == "UNAUTHORIZED" or st in (401, 403):
            if a.access_token:
                raise _Fail(
                    f"Expo refused the access token ({code})",
                    "check access_token (expo.dev → Access tokens)",
                )
            raise _Fail(
                f"Expo wants an access token ({code})",
                "enhanced push security is on: set access_token:",
            )
        raise _status_problem("Expo", st, hp)
    finally:
        a.close()


# --- onesignal -------------------------------------------------------------------------------


def _check_onesignal(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.http import json_or_none
    from mcrm.dispatch.onesignal import OneSignal, _errors_text

    a = OneSignal(name, opts)  # app_id must be a UUID
    try:
        steps.ok("app_id format")
        host, port = _endpoint(a.base, "base_url")
        hp = _host_port(host, port)
        _tcp(host, port, steps)
        # no audience and no content: refused after the key and app_id, nothing created
        resp = _request(
            a.http,
            "POST",
            f"{a.base}/notifications",
            hp,
            params={"c": "push"},
            data=json.dumps({"app_id": a.app_id}).encode(),
            headers={
                "Authorization": f"Key {a.api_key}",
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
            },
        )
        st = resp.status_code
        text = (_errors_text(json_or_none(resp)) or "").lower()
        if st in (401, 403):
            raise _Fail(f"OneSignal refused the API key ({st})", "check api_key (the App API key)")
        if st == 400 and "app_id" in text:
            raise _Fail(
                "OneSignal does not know app_id for this key",
                "check app_id, and that api_key is this app's key",
            )
        if st == 400:
            steps.ok("API key and app_id (an empty request, refused for its missing audience)")
            return
        if 200 <= st < 300:
            raise _Fail(f"OneSignal accepted an empty notification request ({st})", "report it")
        raise _status_problem("OneSignal", st, hp)
    finally:
        a.close()


# --- sendgrid --------------------------------------------------------------------------------


def _check_sendgrid(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.http import json_or_none
    from mcrm.dispatch.sendgrid import SendGrid

    a = SendGrid(name, opts)
    try:
        host, port = _endpoint(a.url, "base_url")
        hp = _host_port(host, port)
        _tcp(host, port, steps)
        body = {
            "personalizations": [{"to": [{"email": PLACEHOLDER_RECIPIENT}]}],
            "from": a.sender,
            "subject": "mcrm providers check",
            "content": [
                {"type": "text/plain", "value": "mcrm providers check (sandbox: never sent)"}
            ],
            "mail_settings": {"sandbox_mode": {"enable": True}},
        }
        resp = _request(a.http, "POST", a.url, hp, data=json.dumps(body).encode())
        st = resp.status_code
        if st == 200:
            steps.ok("API key (a sandbox-mode mail send, not delivered)")
            return
        if st == 202:
            raise _Fail(
                "the sandbox-mode check was queued (202), not only validated",
                "is base_url SendGrid's API? (the message went to a placeholder example.com "
                "address)",
            )
        if st in (401, 403):
            raise _Fail(
                f"SendGrid refused the API key ({st})",
                "check api_key (it needs the Mail Send permission)",
            )
        if st == 400:
            doc = json_or_none(resp)
            errors = doc.get("errors") if isinstance(doc, dict) else None
            fields = sorted(
                {
                    str(e.get("field"))
                    for e in (errors if isinstance(errors, list) else [])
                    if isinstance(e, dict) and e.get("field")
                }
            )
            where = f": {', '.join(fields)}" if fields else ""
            raise _Fail(
                f"SendGrid refused the check message (400{where})",
                "check from: (a verified sender)" if "from" in ",".join(fields) else None,
            )
        raise _status_problem("SendGrid", st, hp)
    finally:
        a.close()


# --- twilio ----------------------------------------------------------------------------------


def _check_twilio(ws: Workspace, name: str, opts: dict[str, Any], steps: _Steps) -> None:
    from mcrm.dispatch.twilio import Twilio

    a = Twilio(name, opts)  # which options are given, and how they combine
    a.close()
    hint = "copy it from the Twilio console"
    if not _sid(opts.get("account_sid"), "AC"):
        raise _Fail("account_sid is not AC followed by 32 hex digits", hint)
    if opts.get("api_key_sid"):
        if not _sid(opts.get("api_key_sid"), "SK"):
            raise _Fail("api_key_sid is not SK followed by 32 hex digits", hint)
        if not re.fullmatch(r"[A-Za-z0-9]{32}", str(opts.get("api_key_secret") or "")):
            raise _Fail("api_key_secret is not 32 letters and digits", hint)
    elif not _HEX32.match(str(opts.get("auth_token") or "")):
        raise _Fail("auth_token is not 32 hex digits", hint)
    if opts.get("messaging_service_sid") and not _sid(opts["messaging_service_sid"], "MG"):
        raise _Fail("messaging_service_sid is not MG followed by 32 hex digits", hint)
    sender = opts.get("from")
    if sender and not (_E164.match(str(sender)) or _ALPHA_SENDER.match(str(sender))):
        raise _Fail(
            "from is neither an E.164 number nor an alphanumeric sender id (1-11 characters)",
            "write a number as +<country code><number>",
        )
    steps.ok("credential shapes")
    host, port = _endpoint(a.url, "base_url")
    _tcp(host, port, steps)
    steps.ok("credentials not verified (no request made)")


def _sid(value: Any, prefix: str) -> bool:
    s = str(value or "")
    return s.startswith(prefix) and bool(_HEX32.match(s[len(prefix) :]))


CHECKS: dict[str, Checker] = {
    "file": _check_file,
    "smtp": _check_smtp,
    "webhook": _check_webhook,
    "inapp": _check_inapp,
    "fcm": _check_fcm,
    "expo": _check_expo,
    "onesignal": _check_onesignal,
    "sendgrid": _check_sendgrid,
    "twilio": _check_twilio,
}
