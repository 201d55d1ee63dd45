"""The /v1/books API: CRUD, validation, pagination, prices, unicode, SQL
metacharacters, concurrency, request ids, /livez, /openapi.json.

Most tests share one daemon (module scope); tests that count rows exactly use
their own daemon and database (fresh_daemon)."""

import concurrent.futures
import json
import subprocess
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from harness import (REPO_ROOT, UUID_RE, assert_book_shape, assert_error, assert_json_content_type,
                     assert_serving, assert_status, describe, parse_link_header, parse_ts, wait_for)


@pytest.fixture(autouse=True)
def daemon_still_serving(shared_daemon):
    """After every test here the daemon must still be alive and serving."""
    yield
    if not getattr(shared_daemon, "crash_reported", False):  # else the test itself said so
        assert_serving(shared_daemon)


# --------------------------------------------------------------------------
# create / read


def test_create_returns_full_book_and_location(api):
    resp = api.post("/v1/books", json={"title": "Dune", "author": "Frank Herbert",
                                       "description": "Spice.", "price": "19.99"})
    assert_status(resp, 201)
    assert_json_content_type(resp)
    book = resp.json()
    assert_book_shape(book)
    assert (book["title"], book["author"], book["description"], book["price"], book["active"]) == \
        ("Dune", "Frank Herbert", "Spice.", "19.99", True)
    assert resp.headers.get("Location") == f"/v1/books/{book['id']}", describe(resp)
    assert book["created_at"] == book["updated_at"]

    got = api.get(f"/v1/books/{book['id']}")
    assert_status(got, 200)
    assert_json_content_type(got)
    assert got.json() == book


def test_create_trims_title_and_author(api):
    book = api.create_book(title="  \t Dune Messiah \n ", author="\u00a0 Frank Herbert  ")
    # at least ASCII whitespace must be trimmed; NBSP trimming is not required
    assert book["title"] == "Dune Messiah"
    assert book["author"].strip("\u00a0 ") == "Frank Herbert"
    assert not book["author"].endswith(" ")


def test_create_description_optional_or_null(api):
    a = api.create_book(title="No description")
    assert a["description"] is None
    b = api.create_book(title="Null description", description=None)
    assert b["description"] is None
    c = api.create_book(title="Empty description", description="")
    assert c["description"] in ("", None)


def test_create_limits_are_inclusive(api):
    book = api.create_book(title="t" * 500, author="a" * 300, description="d" * 10000)
    assert len(book["title"]) == 500 and len(book["author"]) == 300 and len(book["description"]) == 10000


def test_title_limit_counts_characters_not_bytes(api):
    # 500 characters of 3-byte UTF-8: 1500 bytes, still within "title <= 500 chars"
    book = api.create_book(title="本" * 500, author="著" * 300)
    assert book["title"] == "本" * 500
    assert book["author"] == "著" * 300


def test_get_books_are_json_array_of_active_books(api):
    mine = api.create_book(title="Listed")
    resp = api.get("/v1/books", params={"limit": 100})
    assert_status(resp, 200)
    assert_json_content_type(resp)
    books = resp.json()
    assert isinstance(books, list)
    for b in books:
        assert_book_shape(b)
        assert b["active"] is True
    assert mine in books


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "1e3", "0x10", "9223372036854775808",
                                    "99999999999999999999", "1%20OR%201=1", "%27"])
def test_bad_id_is_400(api, bad_id):
    for method in ("GET", "PUT", "DELETE"):
        kw = {"json": {"title": "x"}} if method == "PUT" else {}
        resp = api.request(method, f"/v1/books/{bad_id}", **kw)
        assert_error(resp, 400, "VALIDATION_ERROR")


def test_max_int64_id_is_404(api):
    assert_error(api.get("/v1/books/9223372036854775807"), 404, "NOT_FOUND")
    assert_error(api.put("/v1/books/9223372036854775807", json={"title": "x"}), 404, "NOT_FOUND")
    assert_error(api.delete("/v1/books/9223372036854775807"), 404, "NOT_FOUND")


def test_never_existed_is_404(api):
    assert_error(api.get("/v1/books/987654321"), 404, "NOT_FOUND")


# --------------------------------------------------------------------------
# validation of the create body


VALID = {"title": "Valid", "author": "Author", "price": "1.00"}


def with_(**kw):
    body = dict(VALID)
    for k, v in kw.items():
        if v is _DROP:
            body.pop(k)
        else:
            body[k] = v
    return body


_DROP = object()

INVALID_BODIES = {
    "missing title": with_(title=_DROP),
    "missing author": with_(author=_DROP),
    "missing price": with_(price=_DROP),
    "empty title": with_(title=""),
    "blank title": with_(title="   \t\n "),
    "blank author": with_(author="  "),
    "null title": with_(title=None),
    "null author": with_(author=None),
    "numeric title": with_(title=123),
    "array title": with_(title=["a"]),
    "object author": with_(author={"name": "x"}),
    "title 501 chars": with_(title="t" * 501),
    "author 301 chars": with_(author="a" * 301),
    "description 10001 chars": with_(description="d" * 10001),
    "numeric description": with_(description=5),
    "bool description": with_(description=True),
    "unknown field": with_(isbn="978-0451524935"),
    "unknown field id": with_(id=5),
}


@pytest.mark.parametrize("name", list(INVALID_BODIES))
def test_create_validation_errors(api, name):
    before = api.total_count()
    resp = api.post("/v1/books", json=INVALID_BODIES[name])
    assert_error(resp, 400, "VALIDATION_ERROR")
    assert api.total_count() == before


@pytest.mark.parametrize("body", [b"[]", json.dumps([VALID]).encode(), b'"a string"', b"42", b"null", b"true"],
                         ids=["empty-array", "array", "string", "number", "null", "true"])
def test_create_body_not_an_object(api, body):
    resp = api.post("/v1/books", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, describe(resp)
    assert_json_content_type(resp)
    assert resp.json().get("error") in ("VALIDATION_ERROR", "MALFORMED_JSON"), describe(resp)


# --------------------------------------------------------------------------
# prices


@pytest.mark.parametrize("price,expected", [
    ("15.99", "15.99"),
    (18.99, "18.99"),
    ("7", "7.00"),
    (7, "7.00"),
    ("0.5", "0.50"),
    (0.5, "0.50"),
    ("0", "0.00"),
    (0, "0.00"),
    ("0.00", "0.00"),
    ("0.01", "0.01"),
    (0.07, "0.07"),
    (1.1, "1.10"),
    (19.99, "19.99"),
    ("12.30", "12.30"),
    ("99999999.99", "99999999.99"),
    (99999999.99, "99999999.99"),
    (99999999, "99999999.00"),
])
def test_price_accepted_and_formatted(api, price, expected):
    book = api.create_book(title=f"price {price!r}", price=price)
    assert book["price"] == expected
    got = api.get(f"/v1/books/{book['id']}")
    assert_status(got, 200)
    assert got.json()["price"] == expected


@pytest.mark.parametrize("price", [
    "-0.01", "1.999", "1e3", "abc", "", " ", None, True, False, 100000000, "100000000",
    "100000000.00", -1, -0.01, "-1", 1.999, "0.001", "NaN", "Infinity", "-Infinity", "0x10",
    "1,00", "1.2.3", "1.", ".5e1", [], {}, "12.3a",
], ids=lambda p: repr(p))
def test_price_rejected(api, price):
    before = api.total_count()
    resp = api.post("/v1/books", json=with_(price=price))
    assert_error(resp, 400, "VALIDATION_ERROR")
    assert api.total_count() == before


def test_price_as_raw_json_numbers(api):
    # exact decimal literals in the JSON text, not rounded through a double
    for raw, expected in [(b"0.1", "0.10"), (b"2.675", None), (b"1e2", "100.00"), (b"10.10", "10.10")]:
        body = b'{"title":"raw price","author":"a","price":' + raw + b"}"
        resp = api.post("/v1/books", data=body, headers={"Content-Type": "application/json"})
        if expected is None:  # three decimals: must be rejected, not rounded
            assert_error(resp, 400, "VALIDATION_ERROR")
        else:
            # a number in exponent form is still a number; if accepted it must be exact
            if raw == b"1e2" and resp.status_code == 400:
                continue
            assert_status(resp, 201)
            assert resp.json()["price"] == expected, describe(resp)


# --------------------------------------------------------------------------
# update


def test_put_partial_update_each_field(api):
    book = api.create_book(title="Orig", author="Orig Author", price="5.00", description="d1")
    last = book
    for change, check in [
        ({"title": "  New Title "}, {"title": "New Title"}),
        ({"author": "New Author"}, {"author": "New Author"}),
        ({"description": "new desc"}, {"description": "new desc"}),
        ({"description": None}, {"description": None}),
        ({"price": 18.5}, {"price": "18.50"}),
        ({"price": "7"}, {"price": "7.00"}),
        ({"title": "T2", "author": "A2", "description": "D2", "price": "1.23"},
         {"title": "T2", "author": "A2", "description": "D2", "price": "1.23"}),
    ]:
        resp = api.put(f"/v1/books/{book['id']}", json=change)
        assert_status(resp, 200)
        assert_json_content_type(resp)
        updated = resp.json()
        assert_book_shape(updated)
        expected = dict(last)
        expected.update(check)
        for key in ("id", "title", "author", "description", "price", "active", "created_at"):
            assert updated[key] == expected[key], (key, change, last, updated)
        assert parse_ts(updated["updated_at"]) > parse_ts(last["updated_at"]), (last, updated)
        got = api.get(f"/v1/books/{book['id']}")
        assert got.json() == updated
        last = updated


def test_put_empty_object_is_400(api):
    book = api.create_book()
    assert_error(api.put(f"/v1/books/{book['id']}", json={}), 400, "VALIDATION_ERROR")
    assert api.get(f"/v1/books/{book['id']}").json() == book


@pytest.mark.parametrize("change", [
    {"title": ""}, {"title": "  "}, {"title": None}, {"author": ""}, {"author": None},
    {"price": "-1"}, {"price": "1.999"}, {"price": None}, {"price": "abc"},
    {"title": "t" * 501}, {"description": "d" * 10001}, {"isbn": "x"}, {"active": False},
    {"id": 99}, {"created_at": "2020-01-01T00:00:00Z"},
], ids=lambda c: json.dumps(c)[:40])
def test_put_invalid_is_400_and_changes_nothing(api, change):
    book = api.create_book(title="Unchanged")
    assert_error(api.put(f"/v1/books/{book['id']}", json=change), 400, "VALIDATION_ERROR")
    assert api.get(f"/v1/books/{book['id']}").json() == book


def test_put_missing_is_404(api):
    assert_error(api.put("/v1/books/987654321", json={"title": "x"}), 404, "NOT_FOUND")


def test_put_body_not_an_object(api):
    book = api.create_book()
    resp = api.put(f"/v1/books/{book['id']}", json=["title"])
    assert resp.status_code == 400, describe(resp)


# --------------------------------------------------------------------------
# delete


def test_delete_soft_deletes(api):
    book = api.create_book(title="To delete")
    before = api.total_count()
    resp = api.delete(f"/v1/books/{book['id']}")
    assert_status(resp, 204)
    assert resp.content == b""
    assert_error(api.get(f"/v1/books/{book['id']}"), 410, "GONE")
    assert_error(api.delete(f"/v1/books/{book['id']}"), 410, "GONE")
    assert_error(api.put(f"/v1/books/{book['id']}", json={"title": "revive"}), 410, "GONE")
    assert api.total_count() == before - 1
    listing = api.get("/v1/books", params={"limit": 100}).json()
    assert book["id"] not in [b["id"] for b in listing]


def test_delete_never_existed_is_404(api):
    assert_error(api.delete("/v1/books/987654321"), 404, "NOT_FOUND")


# --------------------------------------------------------------------------
# pagination (own database: exact counts)


def links_of(resp):
    links = parse_link_header(resp.headers.get("Link"))
    out = {}
    for rel, url in links.items():
        parsed = urlparse(url)
        assert parsed.path == "/v1/books", f"Link target {url!r}{describe(resp)}"
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        out[rel] = (int(q["limit"]), int(q["offset"]))
    return out


def test_pagination(fresh_daemon):
    api = fresh_daemon.api
    resp = api.get("/v1/books")
    assert_status(resp, 200)
    assert resp.json() == []
    assert resp.headers.get("X-Total-Count") == "0"
    assert "next" not in links_of(resp) and "prev" not in links_of(resp), describe(resp)

    ids = [api.create_book(title=f"p{i}")["id"] for i in range(25)]
    deleted = api.create_book(title="deleted")
    assert_status(api.delete(f"/v1/books/{deleted['id']}"), 204)
    newest_first = list(reversed(ids))

    # default limit is 20
    resp = api.get("/v1/books")
    assert_status(resp, 200)
    assert [b["id"] for b in resp.json()] == newest_first[:20], describe(resp)
    assert resp.headers.get("X-Total-Count") == "25", describe(resp)
    assert links_of(resp) == {"next": (20, 20)}, describe(resp)

    resp = api.get("/v1/books", params={"limit": 2})
    assert [b["id"] for b in resp.json()] == newest_first[:2]
    assert resp.headers.get("X-Total-Count") == "25"
    assert links_of(resp) == {"next": (2, 2)}, describe(resp)
    link = resp.headers["Link"]
    assert '</v1/books?limit=2&offset=2>; rel="next"' in link or "rel=next" in link.replace('"', ""), link

    resp = api.get("/v1/books", params={"limit": 2, "offset": 2})
    assert [b["id"] for b in resp.json()] == newest_first[2:4]
    assert links_of(resp) == {"next": (2, 4), "prev": (2, 0)}, describe(resp)

    resp = api.get("/v1/books", params={"limit": 10, "offset": 3})
    assert [b["id"] for b in resp.json()] == newest_first[3:13]
    lk = links_of(resp)
    assert lk["next"] == (10, 13), describe(resp)
    assert lk["prev"] == (10, 0), describe(resp)

    # last page: prev only
    resp = api.get("/v1/books", params={"limit": 10, "offset": 20})
    assert [b["id"] for b in resp.json()] == newest_first[20:]
    assert links_of(resp) == {"prev": (10, 10)}, describe(resp)

    # exactly at the end: no next
    resp = api.get("/v1/books", params={"limit": 5, "offset": 20})
    assert [b["id"] for b in resp.json()] == newest_first[20:25]
    assert "next" not in links_of(resp), describe(resp)

    # past the end: empty page, still 200
    resp = api.get("/v1/books", params={"limit": 5, "offset": 1000})
    assert_status(resp, 200)
    assert resp.json() == []
    assert resp.headers.get("X-Total-Count") == "25"
    assert "next" not in links_of(resp) and "prev" in links_of(resp), describe(resp)

    # limits 1 and 100
    resp = api.get("/v1/books", params={"limit": 1})
    assert [b["id"] for b in resp.json()] == newest_first[:1]
    resp = api.get("/v1/books", params={"limit": 100})
    assert [b["id"] for b in resp.json()] == newest_first
    assert "next" not in links_of(resp)

    # walking the next links visits every book exactly once
    seen, path, hops = [], "/v1/books?limit=7", 0
    while path and hops < 10:
        resp = api.get(path)
        assert_status(resp, 200)
        seen += [b["id"] for b in resp.json()]
        nxt = parse_link_header(resp.headers.get("Link")).get("next")
        path = (urlparse(nxt).path + "?" + urlparse(nxt).query) if nxt else None
        hops += 1
    assert seen == newest_first


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "limit=1e1", "limit=10abc",
    "limit=99999999999999999999", "offset=-1", "offset=abc", "offset=1.5",
    "offset=99999999999999999999999", "limit=1;DROP%20TABLE%20books", "limit=", "offset=",
])
def test_bad_pagination_params_are_400(api, query):
    assert_error(api.get(f"/v1/books?{query}"), 400, "VALIDATION_ERROR")


def test_newest_first_ordering(fresh_daemon):
    api = fresh_daemon.api
    ids = [api.create_book(title=f"o{i}")["id"] for i in range(5)]
    books = api.get("/v1/books").json()
    assert [b["id"] for b in books] == list(reversed(ids))
    stamps = [parse_ts(b["created_at"]) for b in books]
    assert stamps == sorted(stamps, reverse=True)
    # an update does not reorder (order is by created_at, not updated_at)
    assert_status(api.put(f"/v1/books/{ids[0]}", json={"title": "touched"}), 200)
    assert [b["id"] for b in api.get("/v1/books").json()] == list(reversed(ids))


# --------------------------------------------------------------------------
# unicode and SQL metacharacters


UNICODE_TITLES = [
    "ノルウェイの森",
    "村上春樹 — 海辺のカフカ",
    "📚🐉 Dragons & Books 🇯🇵",
    "👨‍👩‍👧‍👦 family (ZWJ sequence)",
    "Cafe\u0301 (combining acute, not NFC)",
    "Café (precomposed)",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dalgo",
    "كتاب عربي",
    "עברית",
    "Ελληνικά",
    "𝕄𝕒𝕥𝕙 𝔸𝕝𝕡𝕙𝕒𝕓𝕖𝕥",
    "tab\there",
    "line1\nline2",
    "\u2028\u2029 separators",
    "\ufeffBOM first",
]


@pytest.mark.parametrize("title", UNICODE_TITLES, ids=range(len(UNICODE_TITLES)))
def test_unicode_round_trip(api, title):
    author = "著者 " + title[::-1]
    desc = "説明: " + title * 3
    resp = api.post("/v1/books", json={"title": title, "author": author, "description": desc,
                                       "price": "1.00"})
    assert_status(resp, 201)
    book = resp.json()
    # trimming may strip leading/trailing whitespace only (ASCII, or Unicode too)
    assert book["title"] in (title.strip(" \t\n\r\f\v"), title.strip()), (title, book["title"])
    assert book["author"] in (author.strip(" \t\n\r\f\v"), author.strip()), (author, book["author"])
    assert book["description"] == desc
    got = api.get(f"/v1/books/{book['id']}").json()
    assert got == book
    listing = api.get("/v1/books", params={"limit": 100}).json()
    assert book in listing


def test_unicode_escapes_in_raw_json(api):
    body = b'{"title":"\\u30ce\\u30eb\\u30a6\\u30a7\\u30a4 \\ud83d\\udcda","author":"\\u00e9","price":"2.00"}'
    resp = api.post("/v1/books", data=body, headers={"Content-Type": "application/json"})
    assert_status(resp, 201)
    assert resp.json()["title"] == "ノルウェイ 📚"
    assert resp.json()["author"] == "é"


SQL_STRINGS = [
    "'; DROP TABLE books; --",
    "Robert'); DROP TABLE books;--",
    "1' OR '1'='1",
    "100% _pure_ %s %d %n",
    "back\\slash \\' \\\" \\\\",
    "\"double\" 'single' `back`",
    "$1 $$dollar quoted$$ $tag$x$tag$",
    "\\x00 \\000 E'\\n'",
    "/* comment */ -- comment",
    "%' AND title LIKE '%",
    "_",
    "%",
]


@pytest.mark.parametrize("text", SQL_STRINGS, ids=range(len(SQL_STRINGS)))
def test_sql_metacharacters_are_data(api, text):
    resp = api.post("/v1/books", json={"title": text, "author": text, "description": text, "price": "3.00"})
    assert_status(resp, 201)
    book = resp.json()
    assert (book["title"], book["author"], book["description"]) == (text, text, text)
    got = api.get(f"/v1/books/{book['id']}")
    assert_status(got, 200)
    assert got.json() == book
    upd = api.put(f"/v1/books/{book['id']}", json={"title": text + " v2"})
    assert_status(upd, 200)
    assert upd.json()["title"] == text + " v2"
    # the table is still there and still works
    assert_status(api.get("/v1/books"), 200)
    assert api.total_count() >= 1


# --------------------------------------------------------------------------
# concurrency


def test_40_concurrent_creates(fresh_daemon):
    api = fresh_daemon.api
    api.create_book(title="pre-existing")
    before = api.total_count()

    def create(i):
        return requests.post(api.url("/v1/books"),
                             json={"title": f"concurrent {i}", "author": f"writer {i}", "price": f"{i}.{i % 100:02d}"},
                             timeout=15)

    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(pool.map(create, range(40)))
    for r in responses:
        assert_status(r, 201)
    books = [r.json() for r in responses]
    ids = [b["id"] for b in books]
    assert len(set(ids)) == 40, ids
    for i, b in enumerate(books):
        assert b["title"] == f"concurrent {i}" and b["price"] == f"{i}.{i % 100:02d}", b
        assert responses[i].headers.get("Location") == f"/v1/books/{b['id']}"
    assert api.total_count() == before + 40
    listed = {b["id"]: b for b in api.get("/v1/books", params={"limit": 100}).json()}
    for b in books:
        assert listed.get(b["id"]) == b


def test_concurrent_deletes_of_one_book(api):
    """Exactly one DELETE wins (204); the others see it gone (410)."""
    book = api.create_book(title="delete race")
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: requests.delete(api.url(f"/v1/books/{book['id']}"), timeout=10),
                                  range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [204] + [410] * 9, [(r.status_code, r.text[:100]) for r in responses]


def test_concurrent_updates_of_one_book(api):
    book = api.create_book(title="update race", price="1.00")
    prices = [f"{i}.00" for i in range(2, 22)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda p: requests.put(api.url(f"/v1/books/{book['id']}"), json={"price": p},
                                                         timeout=10), prices))
    for r in responses:
        assert_status(r, 200)
    final = api.get(f"/v1/books/{book['id']}").json()
    assert final["price"] in prices
    assert final["title"] == "update race"
    assert parse_ts(final["updated_at"]) >= max(parse_ts(r.json()["updated_at"]) for r in responses)


def test_concurrent_reads_with_pool_of_one(daemons):
    d = daemons.start(env={"BOOKS_DB_POOL_SIZE": "1"})
    book = d.api.create_book(title="pool of one")

    def work(i):
        if i % 3 == 0:
            return requests.post(d.url("/v1/books"), json={"title": f"p{i}", "author": "a", "price": "1"}, timeout=15)
        if i % 3 == 1:
            return requests.get(d.url(f"/v1/books/{book['id']}"), timeout=15)
        return requests.get(d.url("/v1/books"), timeout=15)

    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        responses = list(pool.map(work, range(30)))
    for i, r in enumerate(responses):
        assert r.status_code == (201 if i % 3 == 0 else 200), describe(r)


def test_keep_alive_session(shared_daemon):
    with requests.Session() as s:
        for _ in range(20):
            r = s.get(shared_daemon.url("/v1/books"), params={"limit": 1}, timeout=5)
            assert_status(r, 200)
        r = s.post(shared_daemon.url("/v1/books"), json={"title": "ka", "author": "ka", "price": 1}, timeout=5)
        assert_status(r, 201)
        r = s.get(shared_daemon.url(f"/v1/books/{r.json()['id']}"), timeout=5)
        assert_status(r, 200)


# --------------------------------------------------------------------------
# request ids and access log


def access_record_for(daemon, request_id):
    recs = daemon.wait_for_log(lambda r: r.get("REQUEST_ID") == request_id and "HTTP_STATUS" in r,
                               message=f"access record with REQUEST_ID={request_id}")
    return recs


@pytest.mark.parametrize("rid", ["abc-123", "x" * 128, "req:1/2?a=b&c=~!@#$%^*()_+[]{}|;,.<>",
                                 "0f9c2a4e-1b2d-4c3e-8f90-123456789abc"])
def test_sane_request_id_is_echoed_and_logged(shared_daemon, rid):
    resp = requests.get(shared_daemon.url("/v1/books/987654321"), headers={"X-Request-ID": rid}, timeout=5)
    assert_status(resp, 404)
    assert resp.headers.get("X-Request-ID") == rid, describe(resp)
    recs = access_record_for(shared_daemon, rid)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec.get("HTTP_METHOD") == "GET", rec
    assert rec.get("HTTP_PATH") == "/v1/books/987654321", rec
    assert str(rec.get("HTTP_STATUS")) == "404", rec
    assert float(rec.get("DURATION_MS")) >= 0, rec
    assert isinstance(rec.get("MESSAGE"), str) and rec["MESSAGE"], rec


@pytest.mark.parametrize("rid", ["x" * 129, "has space", "tab\there", "ctl\x01char", "del\x7fchar",
                                 "caf\u00e9", "x" * 5000],
                         ids=["129chars", "space", "tab", "ctrl", "del", "latin1", "5000chars"])
def test_insane_request_id_is_replaced(shared_daemon, rid):
    resp = requests.get(shared_daemon.url("/livez"), headers={"X-Request-ID": rid}, timeout=5)
    assert_status(resp, 200)
    got = resp.headers.get("X-Request-ID")
    assert got and UUID_RE.match(got), f"expected a generated UUID, got {got!r}{describe(resp)}"
    recs = access_record_for(shared_daemon, got)
    assert str(recs[0].get("HTTP_STATUS")) == "200"


def test_request_id_generated_when_absent(shared_daemon):
    ids = set()
    for _ in range(3):
        resp = requests.get(shared_daemon.url("/livez"), timeout=5)
        got = resp.headers.get("X-Request-ID")
        assert got and UUID_RE.match(got), describe(resp)
        ids.add(got)
    assert len(ids) == 3
    access_record_for(shared_daemon, got)


def test_one_access_record_per_request(shared_daemon):
    rid = "count-me-once"
    api = shared_daemon.api
    resp = api.post("/v1/books", json={"title": "logged", "author": "a", "price": "1"},
                    headers={"X-Request-ID": rid})
    assert_status(resp, 201)
    recs = access_record_for(shared_daemon, rid)
    assert len(recs) == 1
    assert recs[0]["HTTP_METHOD"] == "POST" and recs[0]["HTTP_PATH"] == "/v1/books"
    assert str(recs[0]["HTTP_STATUS"]) == "201"


def test_logs_are_json_lines(shared_daemon):
    requests.get(shared_daemon.url("/livez"), timeout=5)
    wait_for(lambda: shared_daemon.access_records(), 3, message="an access record")
    bad = shared_daemon.non_json_lines()
    assert bad == [], f"stderr lines that are not JSON objects: {bad[:10]}"


# --------------------------------------------------------------------------
# /livez, /health, /openapi.json


def test_livez(api):
    resp = api.get("/livez")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == {"status": "alive"}


def test_health(api):
    resp = api.get("/health")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    assert resp.json() == {"status": "healthy", "services": {"database": "healthy"}}


def test_openapi_document(api):
    resp = api.get("/openapi.json")
    assert_status(resp, 200)
    assert_json_content_type(resp)
    doc = resp.json()
    assert doc.get("openapi") == "3.1.0", doc.get("openapi")
    assert isinstance(doc.get("info"), dict) and doc["info"].get("title") and doc["info"].get("version")
    paths = doc.get("paths", {})
    expected = {"/v1/books": {"get", "post"}, "/v1/books/{id}": {"get", "put", "delete"},
                "/health": {"get"}}
    for path, methods in expected.items():
        assert path in paths, f"{path} missing from paths {sorted(paths)}"
        assert methods <= set(paths[path]), (path, sorted(paths[path]))


def test_openapi_served_document_is_the_installed_file(api):
    path = REPO_ROOT / "books" / "openapi.json"
    assert path.exists(), f"{path} missing"
    assert api.get("/openapi.json").json() == json.loads(path.read_text())


def test_openapi_served_document_lints(api, tmp_path):
    lint = REPO_ROOT / "tests" / "openapi" / "lint.sh"
    if not lint.exists() or not (lint.parent / "node_modules").is_dir():
        pytest.skip("Redocly CLI not installed (run npm ci in tests/openapi)")
    served = tmp_path / "served-openapi.json"
    served.write_bytes(api.get("/openapi.json").content)
    proc = subprocess.run([str(lint), str(served)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"lint failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
