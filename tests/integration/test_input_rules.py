"""One set of input rules for both services (docs/validation.md):

- text (title, author, description): no C0 control other than TAB, LF and CR,
  no DEL, no C1 control (U+0080..U+009F), in any spelling (raw UTF-8 or a
  \\u escape); leading and trailing Unicode whitespace is trimmed; title and
  author are blank, and refused, when nothing is left but whitespace and
  invisible format characters (NBSP, U+200B, U+FEFF, U+2060, ...);
- price: the same decimal rule whether sent as a JSON number or a string: at
  most 99999999.99 and a whole number of cents (digits after the second
  decimal must be zeros), exact, never rounded; negative zero is zero in
  every spelling;
- numbers that do not fit (integers beyond 64 bits, 1e400) are
  VALIDATION_ERROR with a message saying "out of range", never a message
  about malformed JSON;
- Content-Type: application/json (or application/*+json) with no charset or
  charset=utf-8 (any case); another charset is 415.

Every test fails on the code before these rules (each says how)."""

import json

import pytest

from harness import assert_error, assert_status, describe

JSON_CT = "application/json"


def send(api, body, path="/v1/books", method="POST", content_type=JSON_CT, headers=None):
    """A raw request: body bytes, a str (encoded UTF-8) or an object (json.dumps)."""
    hdrs = dict(headers or {})
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return api.request(method, path, data=body, headers=hdrs)


def book_body(**fields):
    body = {"title": "Rules", "author": "An Author", "price": "1.00"}
    body.update(fields)
    return body


def assert_validation(resp, *needles):
    """400 VALIDATION_ERROR whose message agrees with its code."""
    body = assert_error(resp, 400, "VALIDATION_ERROR")
    message = body["message"]
    assert "malformed" not in message.lower(), f"a validation error called malformed{describe(resp)}"
    for needle in needles:
        assert needle in message, f"message lacks {needle!r}{describe(resp)}"
    return message


def raw_price_body(literal):
    """A create body with `literal` (bytes) as the raw price member."""
    return b'{"title":"raw price","author":"a","price":' + literal + b"}"


# --------------------------------------------------------------------------
# text: control characters (before: DEL and C1 were stored)

CONTROLS = {
    "del": "\x7f",
    "c1-first": "\x80",
    "c1-nel": "\x85",
    "c1-csi": "\x9b",
    "c1-last": "\x9f",
    "c0-soh": "\x01",
    "c0-esc": "\x1b",
}


@pytest.mark.parametrize("field", ["title", "author", "description"])
@pytest.mark.parametrize("name", list(CONTROLS))
@pytest.mark.parametrize("where", ["middle", "start", "end"])
def test_control_characters_refused(api, field, name, where):
    c = CONTROLS[name]
    value = {"middle": f"ab{c}cd", "start": f"{c}abcd", "end": f"abcd{c}"}[where]
    before = api.total_count()
    for ensure_ascii in (True, False):  # "\u0085" escape, then raw UTF-8
        body = json.dumps(book_body(**{field: value}), ensure_ascii=ensure_ascii)
        assert_validation(send(api, body), field, "control")
    assert api.total_count() == before


@pytest.mark.parametrize("name", ["del", "c1-nel", "c1-csi"])
def test_control_characters_refused_on_update(api, name):
    book = api.create_book(title="Before", author="Someone")
    for field in ("title", "author", "description"):
        resp = send(api, {field: "x" + CONTROLS[name] + "y"}, path=f"/v1/books/{book['id']}",
                    method="PUT")
        assert_validation(resp, field, "control")
    assert api.get(f"/v1/books/{book['id']}").json() == book


@pytest.mark.parametrize("text", ["tab\there", "line1\nline2", "cr\r\nlf", "\u2028 separators \u2029",
                                  "soft\u00adhyphen", "emoji \U0001F4DA", "\u00a0inner\u00a0nbsp\u00a0"])
def test_text_that_is_not_control_is_kept(api, text):
    book = api.create_book(title=text, author=text, description=text)
    for field in ("title", "author", "description"):
        assert book[field] == text.strip(), (field, text, book[field])


# --------------------------------------------------------------------------
# text: blank and trimming (before: NBSP or zero-width-only titles were stored)

BLANKS = {
    "nbsp": "\u00a0",
    "narrow-nbsp": "\u202f",
    "ideographic-space": "\u3000",
    "em-space": "\u2003",
    "line-separator": "\u2028",
    "zero-width-space": "\u200b",
    "zero-width-joiner": "\u200d",
    "bom": "\ufeff",
    "word-joiner": "\u2060",
    "soft-hyphen": "\u00ad",
    "left-to-right-mark": "\u200e",
    "mixed": " \u00a0\u200b\t\ufeff\u2060\u3000\n ",
}


@pytest.mark.parametrize("field", ["title", "author"])
@pytest.mark.parametrize("name", list(BLANKS))
def test_invisible_only_text_is_blank(api, field, name):
    before = api.total_count()
    for text in (BLANKS[name], BLANKS[name] * 3):
        assert_validation(send(api, book_body(**{field: text})), field, "blank")
    assert api.total_count() == before


def test_invisible_only_title_refused_on_update(api):
    book = api.create_book(title="Visible")
    assert_validation(send(api, {"title": "\u200b\u00a0"}, path=f"/v1/books/{book['id']}",
                           method="PUT"), "title", "blank")
    assert api.get(f"/v1/books/{book['id']}").json() == book


def test_description_may_be_blank(api):
    book = api.create_book(description="\u200b")
    assert book["description"] == "\u200b"
    book = api.create_book(description="\u00a0\u3000")
    assert book["description"] == ""


def test_unicode_whitespace_is_trimmed(api):
    book = api.create_book(title="\u00a0\u3000 Dune\u2003\u202f", author="\u2028Frank Herbert\u00a0")
    assert book["title"] == "Dune" and book["author"] == "Frank Herbert", book


def test_format_characters_around_text_are_kept(api):
    # invisible, but not whitespace: kept (only a title of nothing else is blank)
    book = api.create_book(title="\u200bDune\u2060")
    assert book["title"] == "\u200bDune\u2060"


# --------------------------------------------------------------------------
# price: one decimal rule for numbers and strings

# (literal, expected price or None when refused), valid as a JSON number and
# as the contents of a JSON string
SAME_RULE = [
    ("0.10000000000000000001", None),   # before: the number became 0.10
    ("1.0000000000000000001", None),    # before: the number became 1.00
    ("0.30000000000000004", None),      # before: the number became 0.30
    ("0.1000000000000000055511151231257827", None),  # the double nearest 0.1, exactly
    ("2.675", None),
    ("0.001", None),
    ("99999999.999", None),
    ("100000000", None),
    ("100000000.00", None),
    ("-0.01", None),
    ("-1", None),
    ("1.500", "1.50"),                  # before: the string was refused
    ("1.000", "1.00"),
    ("15.990", "15.99"),
    ("0.10000000000000000000", "0.10"),
    ("99999999.990000000000000", "99999999.99"),
    ("12345678.9", "12345678.90"),
    ("0.01", "0.01"),
    ("0", "0.00"),
    ("7", "7.00"),
    ("99999999.99", "99999999.99"),
]


@pytest.mark.parametrize("literal,expected", SAME_RULE, ids=[c[0] for c in SAME_RULE])
def test_price_number_and_string_follow_one_rule(api, literal, expected):
    as_number = send(api, raw_price_body(literal.encode()))
    as_string = send(api, raw_price_body(b'"' + literal.encode() + b'"'))
    for resp in (as_number, as_string):
        if expected is None:
            assert_validation(resp, "price")
        else:
            assert_status(resp, 201)
            assert resp.json()["price"] == expected, describe(resp)


NEGATIVE_ZEROS = [b"-0", b"-0.0", b"-0.00", b"-0.000", b"-0e0", b"-0.0E+5", b'"-0"', b'"-0.0"',
                  b'"-0.00"', b'"-0.000"']


@pytest.mark.parametrize("literal", NEGATIVE_ZEROS, ids=[n.decode() for n in NEGATIVE_ZEROS])
def test_negative_zero_is_zero_in_every_spelling(api, literal):
    # before: -0 was accepted and -0.0 and "-0" refused
    resp = send(api, raw_price_body(literal))
    assert_status(resp, 201)
    assert resp.json()["price"] == "0.00", describe(resp)


@pytest.mark.parametrize("literal,expected", [(b"1e2", "100.00"), (b"1.5e1", "15.00"),
                                              (b"1234E-2", "12.34"), (b"0.5e0", "0.50"),
                                              (b"9.999999999e7", "99999999.99")])
def test_price_number_with_exponent_is_exact(api, literal, expected):
    resp = send(api, raw_price_body(literal))
    assert_status(resp, 201)
    assert resp.json()["price"] == expected, describe(resp)


@pytest.mark.parametrize("literal", [b"1e-3", b"1.23456e2", b"1e8", b"1e-400", b'"1e2"'])
def test_price_exponent_refused(api, literal):
    # a string is a plain decimal; a number's exact value must be whole cents
    assert_validation(send(api, raw_price_body(literal)), "price")


# --------------------------------------------------------------------------
# numbers out of range: VALIDATION_ERROR and a message that says so
# (before: "malformed JSON at byte ..." with code VALIDATION_ERROR)

HUGE = [b"99999999999999999999", b"-99999999999999999999", b"18446744073709551616",
        b"9223372036854775808", b"-9223372036854775809", b"1e400", b"-1e400"]


@pytest.mark.parametrize("literal", HUGE, ids=[h.decode() for h in HUGE])
def test_books_number_out_of_range(api, literal):
    before = api.total_count()
    assert_validation(send(api, raw_price_body(literal)), "out of range")
    assert api.total_count() == before


@pytest.mark.parametrize("member", ["book_id", "quantity"])
@pytest.mark.parametrize("literal", HUGE, ids=[h.decode() for h in HUGE])
def test_orders_number_out_of_range(orders_api, member, literal):
    other = b'"quantity":1' if member == "book_id" else b'"book_id":1'
    body = b'{"' + member.encode() + b'":' + literal + b"," + other + b"}"
    before = orders_api.total_count()
    assert_validation(send(orders_api, body, path="/v1/orders"), "out of range")
    assert orders_api.total_count() == before


@pytest.mark.parametrize("literal", [b"1.0000000000000000001", b"1.0", b"1e0", b"-0"])
def test_orders_integers_are_integers(orders_api, literal):
    for member, other in ((b"book_id", b'"quantity":1'), (b"quantity", b'"book_id":1')):
        body = b'{"' + member + b'":' + literal + b"," + other + b"}"
        assert_validation(send(orders_api, body, path="/v1/orders"), member.decode())


@pytest.mark.parametrize("key", ["a\x85b", "a\x9bb", "a\x7fb", "a\xa0b"],
                         ids=["c1-nel", "c1-csi", "del", "nbsp"])
def test_orders_idempotency_key_controls_refused(orders_api, key):
    before = orders_api.total_count()
    resp = send(orders_api, {"book_id": 1, "quantity": 1}, path="/v1/orders",
                headers={"Idempotency-Key": key})
    assert_validation(resp, "Idempotency-Key")
    assert orders_api.total_count() == before


# --------------------------------------------------------------------------
# Content-Type charset (before: any charset was read as UTF-8)

REFUSED_CHARSETS = [
    "application/json; charset=utf-16",
    "application/json; charset=UTF-16",
    "application/json;charset=utf-16le",
    "application/json; charset=iso-8859-1",
    'application/json; charset="utf-16"',
    "application/json; charset=utf8",
    "application/json; charset=",
    "application/json; charset=utf-8; charset=utf-16",
    "application/merge-patch+json; charset=utf-16",
]
ACCEPTED_CHARSETS = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json;charset=Utf-8",
    'application/json; charset="utf-8"',
    "application/json; foo=bar; charset=utf-8",
    "application/json; foo=\"a;charset=utf-16\"",
]


@pytest.mark.parametrize("ctype", REFUSED_CHARSETS)
def test_books_charset_other_than_utf8_is_415(api, ctype):
    before = api.total_count()
    assert_error(send(api, book_body(), content_type=ctype), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.total_count() == before


@pytest.mark.parametrize("ctype", ACCEPTED_CHARSETS)
def test_books_utf8_or_no_charset_accepted(api, ctype):
    assert_status(send(api, book_body(), content_type=ctype), 201)


def test_books_utf16_body_is_415_not_misread(api):
    body = json.dumps(book_body(title="UTF-16")).encode("utf-16")
    assert_error(send(api, body, content_type="application/json; charset=utf-16"), 415,
                 "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("ctype", REFUSED_CHARSETS[:4])
def test_orders_charset_other_than_utf8_is_415(orders_api, ctype):
    before = orders_api.total_count()
    resp = send(orders_api, {"book_id": 1, "quantity": 1}, path="/v1/orders", content_type=ctype)
    assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert orders_api.total_count() == before


def test_orders_utf8_charset_accepted(shared_pair):
    book = shared_pair.books_api.create_book(title="Charset", price="2.00")
    resp = send(shared_pair.api, {"book_id": book["id"], "quantity": 1}, path="/v1/orders",
                content_type="application/json; charset=UTF-8")
    assert_status(resp, 201)


# --------------------------------------------------------------------------
# the rules are for what clients send: a book Books stored before them
# stays orderable (Orders snapshots what Books serves; refusing it would be a
# 502 counted against Books by the circuit breaker)


def test_orders_snapshot_books_stored_before_the_rules(odaemons):
    from harness import BooksStub, OrdersApi, raw_money

    with BooksStub(title="Legacy\u0085Title\x7f", author="\u00a0\u200b") as stub:
        orders = odaemons.start_orders(books_url=stub.url(), wait="database")
        resp = OrdersApi(orders.url()).create_order(5, 2)
        order = resp.json()
        assert (order["book_title"], order["book_author"]) == ("Legacy\u0085Title\x7f", "\u00a0\u200b")
        assert raw_money(resp, "total_price") == "25.98", describe(resp)
