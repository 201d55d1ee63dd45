"""GET /docs, the API explorer (docs/api-explorer.md), over HTTP: Books and
Orders serve a page that loads Swagger UI and points it at /openapi.json; the
Swagger UI files from DOCS_ASSETS_DIR (the build's copy here, fetched by meson
from npm) under a fixed allow-list, with their types and cache headers; or the
page loads them from DOCS_ASSETS_URL. A bad DOCS_ASSETS_URL is exit 78; no
assets is a warning and a clear 404; the explorer stays open with bearer
tokens on. test_api_explorer_browser.py drives it in Chromium."""

import hashlib
import json
import secrets

import pytest
import requests

from harness import (EX_CONFIG, ServicePair, assert_error, assert_status, build_dir, free_port,
                     parse_metrics, scaled)
from rawhttp import exchange, request_bytes

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
}
CDN = "https://cdn.example.org/swagger-ui-dist@5.36.0"


def assets_dir():
    """The Swagger UI files meson fetched into the build directory; missing
    is a failure (./dev.sh build and meson's default -Dswagger_ui=auto make them)."""
    path = build_dir() / "data" / "swagger-ui"
    if not (path / "swagger-ui-bundle.js").is_file():
        pytest.fail(f"no Swagger UI in {path}: build with npm available (meson -Dswagger_ui=enabled)",
                    pytrace=False)
    return path


def get(daemon, path, **kw):
    return requests.get(daemon.url(path), timeout=scaled(10), **kw)


def media_type(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip()


@pytest.fixture(scope="module")
def pair(module_odaemons):
    env = {"DOCS_ASSETS_DIR": assets_dir()}
    return ServicePair(module_odaemons, books_env=env, orders_env=env)


@pytest.fixture
def books(pair):
    return pair.current().books


@pytest.fixture
def orders(pair):
    return pair.current().orders


def csp_directives(resp):
    csp = resp.headers.get("Content-Security-Policy", "")
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


# --------------------------------------------------------------------------
# the page, its script, the assets


@pytest.mark.parametrize("kind", ["books", "orders"])
def test_docs_page_loads_swagger_ui_and_the_document(pair, kind):
    daemon = getattr(pair.current(), kind)
    resp = get(daemon, "/docs")
    assert_status(resp, 200)
    assert media_type(resp) == "text/html"
    assert "charset=utf-8" in resp.headers["Content-Type"]
    page = resp.text
    assert '<link rel="stylesheet" href="docs/assets/swagger-ui.css">' in page, page
    assert '<script src="docs/assets/swagger-ui-bundle.js"></script>' in page, page
    assert '<script src="docs/init.js"></script>' in page, page
    assert f"<title>bookstore-{kind} API</title>" in page, page
    # no inline script: every <script> loads a file
    assert page.count("<script") == page.count("<script src=") == 2, page
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"

    csp = csp_directives(resp)
    assert csp["default-src"] == ["'none'"], csp
    assert csp["script-src"] == ["'self'"], csp
    assert csp["style-src"] == ["'self'"], csp
    assert csp["connect-src"] == ["'self'"], csp
    assert csp["frame-ancestors"] == ["'none'"], csp

    script = get(daemon, "/docs/init.js")
    assert_status(script, 200)
    assert media_type(script) == "text/javascript"
    assert '"openapi.json"' in script.text and "SwaggerUIBundle" in script.text
    # the document it points at is there, and is OpenAPI 3.1
    spec = get(daemon, "/openapi.json").json()
    assert spec["openapi"].startswith("3.1"), spec["openapi"]

    head = requests.head(daemon.url("/docs"), timeout=scaled(10))
    assert_status(head, 200)
    assert head.content == b""


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_asset_with_its_type_and_cache_headers(books, name):
    resp = get(books, f"/docs/assets/{name}")
    assert_status(resp, 200)
    assert media_type(resp) == ASSETS[name], resp.headers
    assert resp.content == (assets_dir() / name).read_bytes()
    assert resp.headers["Cache-Control"] == "public, max-age=86400"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"'), etag

    # revalidation: 304 without a body, for the tag alone, in a list, or weak
    for value in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = get(books, f"/docs/assets/{name}", headers={"If-None-Match": value})
        assert again.status_code == 304, (value, again.status_code)
        assert again.content == b""
        assert again.headers["ETag"] == etag
    assert get(books, f"/docs/assets/{name}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_init_script_revalidates(books):
    first = get(books, "/docs/init.js")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = get(books, "/docs/init.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("name", ["nope.js", "swagger-initializer.js", "index.html",
                                  "swagger-ui-bundle.js.map", "swagger-ui.js", "SWAGGER-UI.CSS",
                                  "swagger-ui.css.", ".npmrc", "package.json", "swagger-ui.css%20"])
def test_an_asset_not_in_the_allow_list_is_404(books, name):
    assert_error(get(books, f"/docs/assets/{name}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("path", [
    "/docs/assets/../../meson.build",
    "/docs/assets/..%2F..%2Fmeson.build",
    "/docs/assets/%2e%2e/%2e%2e/meson.build",
    "/docs/assets/..",
    "/docs/assets/../assets/swagger-ui.css",
    "/docs/assets//etc/passwd",
    "/docs/assets/swagger-ui.css/..",
    "/docs/assets/..\\..\\meson.build",
    "/docs/../openapi.json",
    "/docs/assets/swagger-ui.css%00",
])
def test_path_traversal_serves_nothing(books, path):
    """Sent as raw bytes (a client would normalise the dot segments): an
    error, never a file."""
    ex = exchange(books.port, request_bytes("GET", path, [("Connection", "close")]))
    assert ex.responses, ex.describe()
    resp = ex.responses[0]
    assert resp.status in (400, 404), ex.describe()
    assert (resp.header("Content-Type") or "").startswith("application/json"), ex.describe()
    body = json.loads(resp.body)
    assert body["error"] in ("NOT_FOUND", "BAD_REQUEST"), body
    assert b"project(" not in resp.body and b"root:" not in resp.body


def test_only_these_routes_are_open_under_docs(books):
    for path in ("/docs/", "/docs/assets", "/docs/assets/", "/docs/init.js/x", "/docs/index.html"):
        resp = get(books, path)
        assert resp.status_code in (400, 404), (path, resp.status_code)
        assert media_type(resp) == "application/json", (path, resp.headers)


def test_every_event_loop_serves_the_assets(books):
    """BOOKS_THREADS is 2 in the tests: new connections land on both loops,
    each serving the same bytes loaded once at start."""
    want = hashlib.sha256((assets_dir() / "swagger-ui.css").read_bytes()).hexdigest()
    for _ in range(16):
        with requests.Session() as session:  # a connection each
            resp = session.get(books.url("/docs/assets/swagger-ui.css"), timeout=scaled(10))
            assert_status(resp, 200)
            assert hashlib.sha256(resp.content).hexdigest() == want


def test_assets_count_under_one_route_label(books):
    for name in ("swagger-ui.css", "LICENSE", "nope-1.js", "nope-2.js", "nope-3.js"):
        get(books, f"/docs/assets/{name}")
    text = get(books, "/metrics").text
    handlers = {labels.get("handler") for name, labels, _ in parse_metrics(text)
                if name == "http_requests_total"}
    assert "/docs/assets/{file}" in handlers, handlers
    assert "/docs" in handlers and "/docs/init.js" in handlers, handlers
    assert not [h for h in handlers if "nope" in h or "swagger-ui.css" in h or "LICENSE" in h], handlers


def test_startup_says_where_the_assets_come_from(books):
    assert any("API explorer at /docs" in rec.get("MESSAGE", "") and str(assets_dir()) in rec["MESSAGE"]
               for rec in books.log_records()), books.log_tail()


# --------------------------------------------------------------------------
# DOCS_ASSETS_URL


@pytest.mark.parametrize("url", [CDN, CDN + "/"])
def test_assets_url_switches_the_page(odaemons, tmp_path, url):
    # DOCS_ASSETS_DIR too: the URL wins, and the start says the directory is ignored
    env = {"DOCS_ASSETS_URL": url, "DOCS_ASSETS_DIR": tmp_path}
    pair = ServicePair(odaemons, books_env=env, orders_env=env)
    for daemon in (pair.books, pair.orders):
        resp = get(daemon, "/docs")
        assert_status(resp, 200)
        assert f'<link rel="stylesheet" href="{CDN}/swagger-ui.css">' in resp.text, resp.text
        assert f'<script src="{CDN}/swagger-ui-bundle.js"></script>' in resp.text, resp.text
        assert '<script src="docs/init.js"></script>' in resp.text
        assert "docs/assets/" not in resp.text
        csp = csp_directives(resp)
        for directive in ("script-src", "style-src"):
            assert csp[directive] == ["'self'", "https://cdn.example.org"], csp
        assert csp["connect-src"] == ["'self'"], csp
        assert_status(get(daemon, "/docs/init.js"), 200)
        resp = get(daemon, "/docs/assets/swagger-ui.css")
        assert_error(resp, 404, "NOT_FOUND")
        assert "DOCS_ASSETS_URL" in resp.json()["message"]
        assert any(rec.get("LEVEL") == "warning" and "DOCS_ASSETS_DIR ignored" in rec.get("MESSAGE", "")
                   for rec in daemon.log_records()), daemon.log_tail()


def test_assets_url_with_a_port_and_ipv6_host(daemons):
    d = daemons.start(env={"DOCS_ASSETS_URL": "http://[::1]:8443/sui"})
    resp = get(d, "/docs")
    assert '<script src="http://[::1]:8443/sui/swagger-ui-bundle.js"></script>' in resp.text
    assert csp_directives(resp)["script-src"] == ["'self'", "http://[::1]:8443"]


BAD_URLS = ["garbage", "ftp://cdn.example.org/sui", "https://", "//cdn.example.org/sui",
            "https://cdn.example.org/sui?v=5", "https://cdn.example.org/sui#x",
            "https://user:pw@cdn.example.org/sui", 'https://cdn.example.org/"><script>alert(1)</script>',
            "https://cdn.example.org/a b", "javascript:alert(1)", "https://cdn.example.org/x;script-src *",
            "data:text/javascript,alert(1)"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_assets_url_is_exit_78(odaemons, url):
    d = odaemons.spawn(odaemons.env_for(odaemons.cluster.dsn_uri(odaemons.cluster.new_db()), free_port(),
                                        {"DOCS_ASSETS_URL": url}))
    assert d.wait(scaled(20)) == EX_CONFIG, d.log_tail()
    text = d.stderr_text()
    assert "DOCS_ASSETS_URL" in text and "expected http(s)://host" in text, text


def test_a_bad_assets_url_is_exit_78_for_orders(odaemons):
    d = odaemons.spawn(odaemons.env_for_orders(odaemons.cluster.dsn_uri(odaemons.cluster.new_db()),
                                               "http://127.0.0.1:9", free_port(),
                                               {"DOCS_ASSETS_URL": "not a url"}), kind="orders")
    assert d.wait(scaled(20)) == EX_CONFIG, d.log_tail()
    assert "DOCS_ASSETS_URL" in d.stderr_text()


# --------------------------------------------------------------------------
# no assets


@pytest.mark.parametrize("layout", ["empty", "missing", "css-only"])
def test_without_assets_docs_is_a_clear_404_and_a_warning(daemons, tmp_path, layout):
    where = tmp_path / "sui"
    if layout != "missing":
        where.mkdir()
    if layout == "css-only":
        (where / "swagger-ui.css").write_bytes((assets_dir() / "swagger-ui.css").read_bytes())
    d = daemons.start(env={"DOCS_ASSETS_DIR": where})
    resp = get(d, "/docs")
    assert_error(resp, 404, "NOT_FOUND")
    message = resp.json()["message"]
    assert "not installed" in message and "DOCS_ASSETS_URL" in message and "DOCS_ASSETS_DIR" in message
    assert str(where) in message, message
    warnings = [rec for rec in d.log_records() if rec.get("LEVEL") == "warning" and "/docs" in rec.get("MESSAGE", "")]
    assert len(warnings) == 1 and "not installed" in warnings[0]["MESSAGE"], d.log_tail()
    assert_error(get(d, "/docs/assets/swagger-ui-bundle.js"), 404, "NOT_FOUND")
    # nothing else is affected
    assert_status(get(d, "/openapi.json"), 200)
    assert_status(get(d, "/health"), 200)


def test_without_assets_orders_too(fresh_pair, odaemons, tmp_path):
    orders = odaemons.start_orders(books=fresh_pair.books, env={"DOCS_ASSETS_DIR": tmp_path})
    assert_error(get(orders, "/docs"), 404, "NOT_FOUND")
    assert_status(get(orders, "/v1/orders"), 200)


# --------------------------------------------------------------------------
# bearer tokens


def test_docs_stays_open_with_tokens(odaemons, tmp_path):
    token = "tok-" + secrets.token_urlsafe(24)
    tokens = tmp_path / "api-tokens"
    tokens.write_text(f"admin:{hashlib.sha256(token.encode()).hexdigest()}\n")
    env = {"API_TOKENS_FILE": tokens, "DOCS_ASSETS_DIR": assets_dir()}
    pair = ServicePair(odaemons, books_env=env, orders_env=env)
    for daemon in (pair.books, pair.orders):
        for path in ("/docs", "/docs/init.js", "/docs/assets/swagger-ui-bundle.js",
                     "/docs/assets/swagger-ui.css", "/openapi.json"):
            assert_status(get(daemon, path), 200)
    # what the explorer's "Try it out" sends still needs the token where the API does
    assert get(pair.orders, "/v1/orders").status_code == 401
    assert_status(get(pair.orders, "/v1/orders", headers={"Authorization": f"Bearer {token}"}), 200)
    resp = requests.post(pair.books.url("/docs"), timeout=scaled(10))
    assert resp.status_code in (401, 405), resp.status_code
