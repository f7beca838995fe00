"""Identity resolution: anonymous devices, e-shop orders by email, synthetic customers merging
into app users, manual merges, and two real users sharing an email staying apart. Plus the
users upsert rules (later non-null values win; first_seen never moves later)."""

from __future__ import annotations

import datetime as dt

from mcrm import api
from tests.conftest import WS, Cli, Importer, Query

EV = "event_id,user_id,anonymous_id,name,timestamp\n"
ORDERS = "order_id,customer_id,email,timestamp,amount,currency\n"


def owners(query: Query, w: WS, table: str, key: str) -> dict[str, str | None]:
    return {r[0]: r[1] for r in query(w, f"SELECT {key}, user_id FROM {table}")}


def test_anonymous_events_attach_once_the_device_is_linked(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write(
        "anon.csv", EV + "a1,,dev1,app_open,2024-01-01 10:00\na2,,dev1,view,2024-01-01 10:01\n"
    )
    ws.write("login.csv", EV + "a3,u1,dev1,login,2024-01-01 10:05\n")
    ws.write("later.csv", EV + "a4,,dev1,view,2024-01-02 09:00\n")
    importer(ws, "events", ["anon.csv"])
    assert owners(query, ws, "events", "event_id") == {"a1": None, "a2": None}
    importer(ws, "events", ["login.csv"])
    assert owners(query, ws, "events", "event_id") == {"a1": "u1", "a2": "u1", "a3": "u1"}
    importer(ws, "events", ["later.csv"])
    assert owners(query, ws, "events", "event_id")["a4"] == "u1"


def test_anonymous_events_attach_within_one_file(ws: WS, importer: Importer, query: Query) -> None:
    ws.write(
        "e.csv",
        EV + "a1,,dev9,app_open,2024-01-01 10:00\na2,u9,dev9,login,2024-01-01 10:05\n",
    )
    importer(ws, "events", ["e.csv"])
    assert owners(query, ws, "events", "event_id") == {"a1": "u9", "a2": "u9"}


def test_order_with_only_an_email_attaches_to_the_app_user(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write("users.csv", "user_id,email\nu1,ann@example.com\nu2,bob@example.com\n")
    ws.write(
        "orders.csv",
        "order_id,email,timestamp,amount,currency\n"
        '"o1","  Ann@Example.COM ",2024-02-01 10:00,10.00,EUR\n'
        "o2,BOB@example.com,2024-02-02 10:00,12.00,EUR\n",
    )
    importer(ws, "users", ["users.csv"])
    f = importer(ws, "purchases", ["orders.csv"]).files[0]
    assert f.inserted == 2 and f.rejected == 0
    assert owners(query, ws, "purchases", "order_id") == {"o1": "u1", "o2": "u2"}
    assert query(ws, "SELECT count(*) FROM users") == [(2,)]  # no synthetic user made


def test_eshop_customer_merges_into_app_user_when_email_arrives(
    ws: WS, importer: Importer, query: Query, cli: Cli
) -> None:
    ws.write(
        "orders.csv",
        ORDERS + "o1,c77,Carla@Example.com,2024-03-01 10:00,30.00,EUR\n"
        "o2,c77,carla@example.com,2024-04-01 10:00,20.00,EUR\n",
    )
    ws.write("events.csv", EV + "e1,u5,d5,app_open,2024-02-01 10:00\n")
    ws.write("users.csv", "user_id,email,first_name\nu5,carla@example.com,Carla\n")
    importer(ws, "purchases", ["orders.csv"])
    importer(ws, "events", ["events.csv"])
    synthetic = {r[0] for r in query(ws, "SELECT DISTINCT user_id FROM purchases")}
    assert len(synthetic) == 1 and "u5" not in synthetic
    (syn,) = synthetic
    assert "carla" not in syn  # a synthetic id never carries the email
    assert query(ws, "SELECT count(*) FROM users") == [(2,)]

    importer(ws, "users", ["users.csv"])
    assert query(ws, "SELECT user_id FROM users") == [("u5",)]
    assert owners(query, ws, "purchases", "order_id") == {"o1": "u5", "o2": "u5"}
    r = cli(ws, "users", "show", "u5", "--format", "json")
    assert r.exit_code == 0, r.stderr
    prof = r.json()
    assert prof["purchases"]["orders"] == 2
    assert [o["order_id"] for o in prof["purchases"]["recent"]] == ["o2", "o1"]
    assert [e["name"] for e in prof["activity"]["recent_events"]] == ["app_open"]
    assert prof["activity"]["events"] == 1
    assert prof["merged_from"] == [syn]
    # the old synthetic id and the customer id still find the person
    assert api.user_profile(ws.ws, syn)["user_id"] == "u5"
    assert api.user_profile(ws.ws, "c77")["user_id"] == "u5"


def test_two_real_users_with_one_email_are_not_merged(
    ws: WS, importer: Importer, query: Query
) -> None:
    ws.write("a.csv", "user_id,email\nu1,family@example.com\n")
    ws.write("b.csv", "user_id,email\nu2,family@example.com\n")
    importer(ws, "users", ["a.csv"])
    res = importer(ws, "users", ["b.csv"])
    assert any("already belong to another user" in w for w in res.files[0].warnings)
    assert "family@example.com" not in " ".join(res.files[0].warnings)  # no PII in warnings
    assert query(ws, "SELECT user_id FROM users ORDER BY 1") == [("u1",), ("u2",)]
    assert query(ws, "SELECT user_id FROM identities WHERE kind = 'email'") == [("u1",)]
    assert query(ws, "SELECT count(*) FROM user_merges") == [(0,)]


def test_manual_merge_moves_everything(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("users.csv", "user_id,email,city\nA,a@example.com,Brno\nB,,Praha\n")
    ws.write("ev.csv", EV + "e1,A,dA,open,2024-01-01 10:00\ne2,B,dB,open,2024-01-02 10:00\n")
    importer(ws, "users", ["users.csv"])
    importer(ws, "events", ["ev.csv"])
    assert api.merge_users(ws.ws, "A", "B") == ("A", "B")
    assert query(ws, "SELECT user_id, email, city FROM users") == [("B", "a@example.com", "Praha")]
    assert set(owners(query, ws, "events", "event_id").values()) == {"B"}
    assert api.user_profile(ws.ws, "A")["user_id"] == "B"


# -- users upsert -----------------------------------------------------------------------------


def test_users_later_non_null_values_win(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("v1.csv", "user_id,first_name,city,locale\nu1,Ann,Praha,cs\n")
    ws.write("v2.csv", "user_id,first_name,city,locale\nu1,,Brno,\n")
    importer(ws, "users", ["v1.csv"])
    f = importer(ws, "users", ["v2.csv"]).files[0]
    assert (f.updated, f.duplicates) == (1, 0)
    assert query(ws, "SELECT first_name, city, locale FROM users") == [("Ann", "Brno", "cs")]


def test_users_later_rows_in_one_file_win(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("v.csv", "user_id,city,country\nu1,Praha,CZ\nu1,Wien,\n")
    f = importer(ws, "users", ["v.csv"]).files[0]
    assert (f.inserted, f.updated) == (1, 1)
    assert query(ws, "SELECT city, country FROM users") == [("Wien", "CZ")]


def test_first_seen_never_moves_later(ws: WS, importer: Importer, query: Query) -> None:
    ws.write("a.csv", "user_id,first_seen\nu1,2024-03-01 00:00\n")
    ws.write("b.csv", "user_id,first_seen\nu1,2024-06-01 00:00\n")
    ws.write("c.csv", "user_id,first_seen\nu1,2023-01-01 00:00\n")
    ws.write("e.csv", EV + "e1,u1,,open,2024-05-01 00:00\n")
    importer(ws, "users", ["a.csv"])
    importer(ws, "users", ["b.csv"])
    importer(ws, "events", ["e.csv"])
    assert query(ws, "SELECT first_seen FROM users") == [(dt.datetime(2024, 3, 1),)]
    importer(ws, "users", ["c.csv"])
    assert query(ws, "SELECT first_seen FROM users") == [(dt.datetime(2023, 1, 1),)]
