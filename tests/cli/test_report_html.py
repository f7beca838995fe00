"""`mcrm report html`: the page, opened in a real headless Chromium with no network.

Promises:
- every chart the page declares is drawn (plotly's `.js-plotly-plot` and `svg.main-svg` in each
  section), no script error, rejected promise or CSP violation happened, and the page is no
  wider than a phone;
- a section without data is a "no data" panel, and a workspace with almost nothing still gives
  a page that renders without errors;
- a hostile campaign description shows as text and runs nothing;
- the numbers the charts carry are the workspace's (the RFM grid counts every customer with a
  paid order in the window, computed here from the purchases table).

Chromium: Debian's `chromium` (`.ci/run` installs it). Missing, the browser tests are skipped
locally with a reason, and fail in CI (`CI=true`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mcrm import api, demo
from mcrm.config import Workspace, open_workspace
from mcrm.reports.html import HtmlOptions, json_for_script
from tests.conftest import Cli

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-15T23:59"  # workspace zone (Europe/Prague): the sample's last day
AS_OF_UTC = dt.datetime(2026, 11, 15, 22, 59)
IMPORT_NOW = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
HOSTILE = (
    "<script>document.body.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"></p><!-- & \u2028"
)
SECTIONS = (
    "kpi",
    "acquisition",
    "cohorts",
    "funnel",
    "rfm",
    "lifecycle",
    "clv",
    "segments",
    "messaging",
    "campaigns",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    path = chromium_path()
    if path is None:
        reason = "chromium is not installed (apt-get install -y chromium; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def open_in_chromium(
    exe: str,
    page: Path,
    profile: Path,
    width: int = 1280,
    height: int = 2400,
    extra: list[str] | None = None,
) -> str:
    """The DOM after the page's scripts ran, from headless Chromium with every network route
    closed (no proxy that answers, no name that resolves)."""
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--window-size={width},{height}",
        "--virtual-time-budget=30000",
        *(extra or []),
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode("utf-8")


class Dom(HTMLParser):
    """What the test reads from the dumped DOM, per `<section data-section>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str | None] = {}
        self.errors: list[str] = []
        self.plots: dict[str, int] = {}
        self.svgs: dict[str, int] = {}
        self.nodata: dict[str, int] = {}
        self.descs: list[str] = []
        self.title = ""
        self._section: str | None = None
        self._in: str | None = None  # "error", "desc" or "title"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        elif tag == "section" and a.get("data-section"):
            self._section = a["data-section"]
            for d in (self.plots, self.svgs, self.nodata):
                d.setdefault(self._section or "", 0)
        elif tag == "li" and self._in == "errors":
            self._in = "error"
            self.errors.append("")
        elif tag == "ul" and a.get("id") == "mcrm-errors":
            self._in = "errors"
        elif tag == "title":
            self._in = "title"
        elif tag == "p" and "desc" in classes:
            self._in = "desc"
            self.descs.append("")
        if self._section is None:
            return
        if tag == "div" and "js-plotly-plot" in classes:
            self.plots[self._section] += 1
        if tag == "svg" and "main-svg" in classes:
            self.svgs[self._section] += 1
        if tag == "div" and "nodata" in classes:
            self.nodata[self._section] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "ul" and self._in in ("errors", "error"):
            self._in = None
        elif tag == "li" and self._in == "error":
            self._in = "errors"
        elif tag in ("p", "title") and self._in in ("desc", "title"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "error":
            self.errors[-1] += data
        elif self._in == "desc":
            self.descs[-1] += data
        elif self._in == "title":
            self.title += data


def parse_dom(text: str) -> Dom:
    d = Dom()
    d.feed(text)
    return d


def page_figures(page: Path) -> dict[str, list[dict[str, Any]]]:
    """The figures the page declares, read back from its JSON data element."""
    m = re.search(
        r'<script type="application/json" id="mcrm-data">(.*?)</script>',
        page.read_text(encoding="utf-8"),
        re.S,
    )
    assert m, "no data element in the page"
    figures: dict[str, list[dict[str, Any]]] = json.loads(m.group(1))["figures"]
    return figures


# ---------------------------------------------------------------------------------------------
# workspaces


def _workspace(root: Path) -> Workspace:
    root.mkdir(parents=True)
    shutil.copy(REPO / "mcrm.yaml", root / "mcrm.yaml")
    shutil.copy(REPO / "segments.yaml", root / "segments.yaml")
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    return open_workspace(str(root), {}, root)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """`mcrm demo` on a generated sample of 300 users, then segments computed at two instants, the
    win-back campaign and a copy with a hostile description planned three weeks before the
    end (so their goal windows close inside the data), and a CLV prediction run."""
    from mcrm.campaigns.engine import plan_campaign
    from mcrm.predict.run import predict_clv
    from mcrm.segments.engine import compute

    root = tmp_path_factory.mktemp("html") / "ws"
    ws = _workspace(root)
    winback = (root / "campaigns" / "winback_dormant.yaml").read_text(encoding="utf-8")
    line = "description: " + json.dumps(HOSTILE)
    hostile = re.sub(r"^description: .*$", lambda _m: line, winback, flags=re.M)
    (root / "campaigns" / "hostile_copy.yaml").write_text(hostile, encoding="utf-8")
    # the quick start: generate, import, segments, plans, and .mcrm/report.html
    assert demo.run(ws, generate=True, users=300, seed=7, quiet=True) == 0
    compute(ws, None, AS_OF_UTC - dt.timedelta(days=14))
    compute(ws, None, AS_OF_UTC)
    for name in ("winback_dormant", "hostile_copy"):
        plan_campaign(ws, name, AS_OF_UTC - dt.timedelta(days=21))
    predict_clv(ws, as_of=AS_OF_UTC)
    return ws


@pytest.fixture(scope="module")
def sample_page(sample: Workspace) -> Path:
    from typer.testing import CliRunner

    from mcrm.cli.main import app

    out = sample.root / "out" / "report.html"
    res = CliRunner().invoke(
        app,
        ["--workspace", str(sample.root), "report", "html", "--out", str(out), "--as-of", AS_OF],
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""  # stdout carries data only: the page went to --out
    assert f"wrote {out}" in res.stderr
    return out


# ---------------------------------------------------------------------------------------------
# the page in a browser


def test_every_chart_renders_without_errors(
    browser: str, sample_page: Path, tmp_path: Path
) -> None:
    figures = page_figures(sample_page)
    dom = parse_dom(open_in_chromium(browser, sample_page, tmp_path / "p"))
    assert dom.errors == []
    assert dom.body.get("data-rendered") == str(sum(len(f) for f in figures.values()))
    assert set(dom.plots) == set(SECTIONS)
    # every section of this workspace has data: each is drawn, none is a no-data panel
    for key in SECTIONS:
        n = len(figures.get(key, []))
        assert n >= 1, f"section {key} has no chart"
        assert dom.plots[key] == n, key
        assert dom.svgs[key] >= n, key
        assert dom.nodata[key] == 0, key
    assert dom.body.get("data-pwned") is None
    assert dom.title.startswith("mcrm report")


PHONE_FRAME = """<!DOCTYPE html><html><head><style>body{margin:0}
iframe{border:0;width:390px;height:844px}</style></head><body>
<iframe id="f" src="%s"></iframe><script>
(function poll(){
  var d=document.getElementById('f').contentDocument, b=d&&d.body;
  if(b&&b.hasAttribute('data-rendered')){setTimeout(function(){
    ['rendered','scroll-width','window-width'].forEach(function(a){
      document.body.setAttribute('data-inner-'+a,b.getAttribute('data-'+a));});
    document.body.setAttribute('data-inner-errors',
      String(d.getElementById('mcrm-errors').children.length));},500);
    return;}
  setTimeout(poll,100);
})();
</script></body></html>"""


def test_phone_width_nothing_overflows(browser: str, sample_page: Path, tmp_path: Path) -> None:
    # headless Chromium lays windows out at least 500 px wide: a 390 px frame is the phone
    frame = sample_page.parent / "phone.html"
    frame.write_text(PHONE_FRAME % sample_page.name, encoding="utf-8")
    dom = parse_dom(
        open_in_chromium(
            browser, frame, tmp_path / "p", 500, 900, extra=["--allow-file-access-from-files"]
        )
    )
    figures = page_figures(sample_page)
    assert dom.body.get("data-inner-errors") == "0"
    assert dom.body.get("data-inner-rendered") == str(sum(len(f) for f in figures.values()))
    assert dom.body.get("data-inner-window-width") == "390"
    # the frame's own scroll bar may take some of the 390 px; nothing is wider than the rest
    assert int(dom.body.get("data-inner-scroll-width") or 999) <= 390


def test_hostile_description_is_text(browser: str, sample_page: Path, tmp_path: Path) -> None:
    text = sample_page.read_text(encoding="utf-8")
    assert "<script>document.body" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-pwned&#x27;,&#x27;1&#x27;)" in text
    dom = parse_dom(open_in_chromium(browser, sample_page, tmp_path / "p"))
    assert HOSTILE in dom.descs  # shown exactly, as text
    assert dom.body.get("data-pwned") is None
    assert dom.errors == []


def test_nearly_empty_workspace_gives_no_data_panels(
    browser: str, cli: Cli, tmp_path: Path
) -> None:
    ws = _workspace(tmp_path / "ws")
    (ws.root / "users.csv").write_text(
        "user_id,email,first_seen\nu1,a@example.com,2026-11-01T10:00:00Z\n", encoding="utf-8"
    )
    api.import_files(ws, "users", ["users.csv"], cwd=ws.root, now=IMPORT_NOW)
    out = tmp_path / "empty.html"
    res = cli(ws.root, "report", "html", "--out", str(out), "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    dom = parse_dom(open_in_chromium(browser, out, tmp_path / "p"))
    assert dom.errors == []
    figures = page_figures(out)
    for key in ("acquisition", "funnel", "rfm", "clv", "segments", "campaigns"):
        assert dom.nodata[key] >= 1, key
        assert dom.plots[key] == 0, key
    assert dom.body.get("data-rendered") == str(sum(len(f) for f in figures.values()))


# ---------------------------------------------------------------------------------------------
# without a browser


def test_demo_writes_the_report(sample: Workspace) -> None:
    page = sample.db_path.parent / "report.html"
    figures = page_figures(page)
    assert figures["kpi"] and figures["rfm"] and figures["cohorts"]


def test_rfm_grid_counts_every_customer_in_the_window(
    sample: Workspace, sample_page: Path
) -> None:
    import duckdb

    con = duckdb.connect(str(sample.db_path), read_only=True)
    try:
        con.execute("SET TimeZone='UTC'")
        rows = con.execute(
            "SELECT user_id, ts FROM purchases WHERE status = 'paid' AND user_id IS NOT NULL"
        ).fetchall()
    finally:
        con.close()
    window = dt.timedelta(days=365)
    expected = {u for u, ts in rows if dt.timedelta(0) <= AS_OF_UTC - ts <= window}
    (grid,) = page_figures(sample_page)["rfm"]
    z = grid["data"][0]["z"]
    assert sum(sum(row) for row in z) == len(expected)
    assert len(z) == 5 and all(len(row) == 5 for row in z)


def test_default_campaigns_are_those_planned_in_the_period(sample_page: Path) -> None:
    captions = [f["title"] for f in page_figures(sample_page)["campaigns"]]
    assert captions == [
        "Uplift vs holdout, 95% CI: hostile_copy",
        "Uplift vs holdout, 95% CI: winback_dormant",
    ]


def test_campaign_option_picks_one(sample: Workspace, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "one.html"
    res = cli(
        sample.root, "report", "html", "--out", str(out), "--as-of", AS_OF,
        "--campaign", "winback_dormant", "--funnel", "session_start,purchase", "--within", "7d",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    figs = page_figures(out)
    assert [f["title"] for f in figs["campaigns"]] == [
        "Uplift vs holdout, 95% CI: winback_dormant"
    ]
    (funnel,) = figs["funnel"]
    assert funnel["data"][0]["y"] == ["1. session_start", "2. purchase"]


def test_the_page_needs_no_network(sample_page: Path) -> None:
    text = sample_page.read_text(encoding="utf-8")
    assert 'content="default-src &#x27;none&#x27;; script-src &#x27;unsafe-inline&#x27;;' in text
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)


def test_json_for_script_cannot_end_the_script() -> None:
    value = {"a": "</script><!-- & \u2028 \u2029 <b>", "b": [1.5, None]}
    text = json_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_bad_options_are_usage_errors(sample: Workspace, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "x.html"
    res = cli(sample.root, "report", "html", "--out", str(out), "--funnel", "a,,b")
    assert res.exit_code == 2
    assert "--funnel" in res.stderr and len(res.stderr.strip().splitlines()) <= 2
    res = cli(sample.root, "report", "html")
    assert res.exit_code == 2 and "--out" in res.stderr
    assert not out.exists()
    assert HtmlOptions().funnel == ("product_view", "add_to_cart", "purchase")


class Cells(HTMLParser):
    """The text of every `<td>` in a page (character references decoded, as a browser shows)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self._in = True
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.cells[-1] += data


def test_imported_campaign_names_show_as_written(cli: Cli, tmp_path: Path) -> None:
    """A campaign name from a provider's file (any text) reads the same in the messaging table
    as in the file: escaped once for the markup, not twice."""
    name = 'Spring & <Summer> "sale"'
    ws = _workspace(tmp_path / "ws")
    (ws.root / "users.csv").write_text(
        "user_id,email,first_seen\nu1,a@example.com,2026-11-01T10:00:00Z\n", encoding="utf-8"
    )
    quoted = '"' + name.replace('"', '""') + '"'
    (ws.root / "me.csv").write_text(
        "event_id,provider,message_id,user_id,campaign,channel,type,timestamp\n"
        f"e1,fcm,m1,u1,{quoted},push,sent,2026-11-10T10:00:00Z\n"
        f"e2,fcm,m1,u1,{quoted},push,delivered,2026-11-10T10:00:05Z\n",
        encoding="utf-8",
    )
    api.import_files(ws, "users", ["users.csv"], cwd=ws.root, now=IMPORT_NOW)
    api.import_files(ws, "message-events", ["me.csv"], cwd=ws.root, now=IMPORT_NOW)
    out = tmp_path / "m.html"
    res = cli(ws.root, "report", "html", "--out", str(out), "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    parser = Cells()
    parser.feed(out.read_text(encoding="utf-8"))
    assert f"{name} · push · fcm" in parser.cells
    # plotly reads a few tags and entities in the labels it draws: there the name is escaped
    (chart,) = page_figures(out)["messaging"]
    assert chart["data"][0]["y"] == ['Spring &amp; &lt;Summer&gt; "sale" · push · fcm']


def test_a_report_warning_names_its_report_once(cli: Cli, tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    (ws.root / "users.csv").write_text(
        "user_id,email,first_seen\nu1,a@example.com,2026-11-01T10:00:00Z\n", encoding="utf-8"
    )
    api.import_files(ws, "users", ["users.csv"], cwd=ws.root, now=IMPORT_NOW)
    out = tmp_path / "w.html"
    res = cli(ws.root, "report", "html", "--out", str(out), "--as-of", AS_OF)
    assert res.exit_code == 0, res.stderr
    # the funnel report's own warning already begins "funnel:"
    assert "warning: funnel: no event named 'product_view' in the events table" in res.stderr
    assert not re.search(r"(\w+): \1:", res.stderr)


def test_uplift_table_headers_are_human(sample_page: Path) -> None:
    """Like the other tables: words, not the report's column names (`ci_low`, `n`)."""
    text = sample_page.read_text(encoding="utf-8")
    section = text[text.index('id="campaigns"') :]
    heads = re.findall(r"<th>([^<]*)</th>", section)
    assert heads[:8] == [
        "Variant",
        "Recipients",
        "Conversions",
        "Conversion rate",
        "Uplift vs holdout",
        "95% CI low",
        "95% CI high",
        "Verdict",
    ]
    assert not {"n", "ci_low", "ci_high", "rate", "uplift", "verdict"} & set(heads)


def test_write_errors_say_why(sample: Workspace, cli: Cli, tmp_path: Path) -> None:
    """The reason the OS gave, in words, never `None`; the path at fault when it is a parent."""
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    for out in (blocker / "r.html", blocker / "sub" / "r.html"):
        res = cli(sample.root, "report", "html", "--out", str(out), "--as-of", AS_OF)
        assert res.exit_code == 2
        assert f"cannot write {out}: {blocker} is a file, not a directory" in res.stderr
        assert "None" not in res.stderr


def test_failed_build_leaves_no_folder_behind(cli: Cli, tmp_path: Path) -> None:
    """The --out folder is made before the build (a bad path fails at once); a build that then
    fails (no database yet) takes the folders it made away again, and only those."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "mcrm.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    (root / "kept").mkdir()
    for out in (root / "a" / "b" / "r.html", root / "kept" / "c" / "r.html"):
        res = cli(root, "report", "html", "--out", str(out), "--as-of", AS_OF)
        assert res.exit_code == 3, res.stderr
        assert "no database yet" in res.stderr
    assert sorted(p.name for p in root.iterdir()) == ["kept", "mcrm.yaml"]
    assert list((root / "kept").iterdir()) == []


def test_write_reason_names_the_cause(tmp_path: Path) -> None:
    from mcrm.errors import os_reason

    def caught(fn: Any) -> OSError:
        try:
            fn()
        except OSError as e:
            return e
        raise AssertionError("no error")

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        out = ro / "r.html"
        if os.geteuid() != 0:  # root writes anywhere
            e = caught(lambda: out.write_text("x"))
            assert os_reason(e, out) == "Permission denied"
    finally:
        ro.chmod(0o700)
    assert os_reason(caught(lambda: tmp_path.write_bytes(b"x")), tmp_path) == (
        "it is a directory (give a file name)"
    )
    gone = tmp_path / "gone" / "r.csv"
    assert os_reason(caught(lambda: gone.write_bytes(b"x")), gone) == (
        f"directory {gone.parent} does not exist"
    )
    if Path("/dev/full").exists():
        full = Path("/dev/full")
        assert os_reason(caught(lambda: full.write_bytes(b"x" * 10)), full) == (
            "No space left on device"
        )
    # an OSError raised without an errno (by a library or a filesystem layer) has no strerror
    assert os_reason(OSError("disk quota exhausted"), tmp_path / "r.html") == (
        "disk quota exhausted"
    )
    assert os_reason(OSError(), tmp_path / "r.html") == "OSError"
    assert os_reason(ValueError("embedded null byte"), tmp_path / "r.html") == (
        "embedded null byte"
    )
