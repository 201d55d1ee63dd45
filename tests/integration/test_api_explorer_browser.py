"""GET /docs in a real browser: Debian's headless Chromium, driven through
chromedriver by python3-selenium. Books' explorer renders its operations,
and "Try it out" → "Execute" on GET /v1/books returns the books the test
made, sent to the daemon that served the page (not to the document's
development server); Orders' explorer renders its operations. The page runs
under its strict Content-Security-Policy: a violation fails the test.

Screenshots go to $BOOKSTORE_TEST_ARTIFACTS/<test> (default: the test's
pytest tmp_path); the path is printed, and named in failure messages.

Chromium, chromedriver or selenium missing fails the tests (./dev.sh deps
installs them: chromium, chromium-driver, python3-selenium)."""

import os
import re
import uuid
from pathlib import Path

import pytest

from harness import ServicePair, assert_status, build_dir, scaled

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Before any script of the page runs: keep every CSP violation and every
# uncaught error where the test can read them.
RECORDER = """
window.__explorerProblems = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__explorerProblems.push("CSP " + e.violatedDirective + " blocked " + e.blockedURI);
});
window.addEventListener("error", function (e) {
  window.__explorerProblems.push("error " + e.message);
});
"""


def selenium_modules():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as exc:
        pytest.fail(f"python3-selenium is not installed ({exc}); ./dev.sh deps installs it", pytrace=False)
    return webdriver, Service, By, EC, WebDriverWait


@pytest.fixture
def artifacts(request, tmp_path):
    base = os.environ.get("BOOKSTORE_TEST_ARTIFACTS")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = Path(base) / name if base else tmp_path / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nartifacts of {request.node.nodeid}: {path}")
    return path


@pytest.fixture(scope="module")
def pair(module_odaemons):
    assets = build_dir() / "data" / "swagger-ui"
    if not (assets / "swagger-ui-bundle.js").is_file():
        pytest.fail(f"no Swagger UI in {assets}: build with npm available (meson -Dswagger_ui=enabled)",
                    pytrace=False)
    env = {"DOCS_ASSETS_DIR": assets}
    return ServicePair(module_odaemons, books_env=env, orders_env=env)


@pytest.fixture
def browser(tmp_path):
    webdriver, Service, _, _, _ = selenium_modules()
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.fail(f"{path} is missing: install the Debian package {package} (./dev.sh deps)",
                        pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1800", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    service = Service(str(CHROMEDRIVER), service_args=[f"--log-path={tmp_path / 'chromedriver.log'}"])
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(scaled(60))
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        yield driver
    finally:
        driver.quit()


def problems(driver):
    found = driver.execute_script("return window.__explorerProblems;")
    assert isinstance(found, list), "the CSP and error recorder did not run in the page"
    return found


def open_explorer(driver, daemon, tag, operation_id, artifacts, shot):
    """Load /docs and wait for one operation's block; returns that block."""
    _, _, By, EC, WebDriverWait = selenium_modules()
    driver.get(daemon.url("/docs"))
    block_id = f"operations-{tag}-{operation_id}"
    try:
        return WebDriverWait(driver, scaled(30)).until(EC.presence_of_element_located((By.ID, block_id)))
    except Exception:
        driver.save_screenshot(str(artifacts / shot))
        raise AssertionError(f"no #{block_id} on {daemon.url('/docs')}; screenshot {artifacts / shot}; "
                             f"page problems {problems(driver)}; page text: {driver.find_element(By.TAG_NAME, 'body').text[:500]!r}")


def test_books_explorer_try_it_out_lists_the_books(pair, browser, artifacts):
    _, _, By, EC, WebDriverWait = selenium_modules()
    books = pair.current().books
    marker = uuid.uuid4().hex[:8]
    titles = [f"Explorer {marker} one", f"Explorer {marker} two"]
    for title in titles:
        assert_status(books.api.post("/v1/books", json={"title": title, "author": "Browser",
                                                        "price": "12.50"}), 201)

    block = open_explorer(browser, books, "Books", "listBooks", artifacts, "books-docs-failed.png")
    # the document's operations are on the page
    for tag, op in (("Books", "createBook"), ("Books", "getBook"), ("Books", "updateBook"),
                    ("Books", "deleteBook"), ("Operations", "getHealth"),
                    ("Operations", "getOpenApiDocument")):
        assert browser.find_elements(By.ID, f"operations-{tag}-{op}"), op
    # the only server offered is the one that served the page
    servers = [o.text for o in browser.find_elements(By.CSS_SELECTOR, ".servers select option")]
    assert servers and servers[0].startswith(books.url()), servers

    wait = WebDriverWait(browser, scaled(30))
    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    execute = wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, "button.execute"))[0]
    execute.click()

    def response_body(_):
        bodies = block.find_elements(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre")
        text = "\n".join(b.text for b in bodies)
        return text if all(t in text for t in titles) else None

    try:
        body = wait.until(response_body)
    finally:
        responses = block.find_elements(By.CSS_SELECTOR, ".live-responses-table")
        if responses:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", responses[0])
        browser.save_screenshot(str(artifacts / "books-docs-try-it-out.png"))
    status = block.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
    assert status.text.strip().startswith("200"), status.text
    request_url = block.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert request_url.startswith(books.url("/v1/books")), request_url
    assert '"Browser"' in body, body
    assert problems(browser) == [], problems(browser)
    # the daemon served it: its access log has the explorer's request
    assert any(r.get("HTTP_PATH") == "/v1/books" and r.get("HTTP_STATUS") == "200"
               for r in books.access_records())
    assert (artifacts / "books-docs-try-it-out.png").stat().st_size > 10000


def test_orders_explorer_renders_its_operations(pair, browser, artifacts):
    _, _, By, _, _ = selenium_modules()
    orders = pair.current().orders
    open_explorer(browser, orders, "Orders", "listOrders", artifacts, "orders-docs-failed.png")
    for op in ("createOrder", "getOrder"):
        assert browser.find_elements(By.ID, f"operations-Orders-{op}"), op
    assert browser.find_elements(By.ID, "operations-Operations-getHealth")
    heading = browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert "Orders" in heading, heading
    browser.save_screenshot(str(artifacts / "orders-docs.png"))
    assert problems(browser) == [], problems(browser)
