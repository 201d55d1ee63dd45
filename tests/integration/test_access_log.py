"""ACCESS_LOG (all, errors, off) and ACCESS_LOG_MAX_PER_S: which requests get
an access record. Errors always do unless the log is off; successes beyond
the per-second budget are counted and said in one record, not written."""

import time

import pytest
import requests

from harness import scaled, wait_for


def get(d, path, session):
    return session.get(d.url(path), timeout=5).status_code


def records_for(d, path):
    return [r for r in d.access_records() if r.get("HTTP_PATH") == path]


def test_default_logs_every_request_at_a_low_rate(daemons):
    d = daemons.start()
    with requests.Session() as s:
        for _ in range(5):
            assert get(d, "/v1/books?limit=1", s) == 200
    wait_for(lambda: len(records_for(d, "/v1/books")) == 5, scaled(3),
             message="5 access records")


def test_off_writes_no_access_record(daemons):
    d = daemons.start(env={"ACCESS_LOG": "off"})
    with requests.Session() as s:
        assert get(d, "/v1/books/1", s) == 404
        assert get(d, "/v1/books?limit=1", s) == 200
    time.sleep(scaled(0.3))
    assert d.access_records() == [], d.access_records()
    assert any("listening" in r.get("MESSAGE", "") for r in d.log_records()), \
        "other messages are still logged"


def test_errors_logs_only_4xx_and_5xx(daemons):
    d = daemons.start(env={"ACCESS_LOG": "errors"})
    with requests.Session() as s:
        for _ in range(3):
            assert get(d, "/v1/books?limit=1", s) == 200
        assert get(d, "/v1/books/987654", s) == 404
        assert get(d, "/v1/books/abc", s) == 400
    wait_for(lambda: len(d.access_records()) >= 2, scaled(3), message="the error records")
    time.sleep(scaled(0.2))
    # (the harness's GET /health while the schema was applied may be a 503)
    ours = [r for r in d.access_records() if r.get("HTTP_PATH", "").startswith("/v1/")]
    statuses = sorted(int(r["HTTP_STATUS"]) for r in ours)
    assert statuses == [400, 404], statuses


def test_successes_over_the_budget_are_counted_not_written(daemons):
    d = daemons.start(env={"ACCESS_LOG_MAX_PER_S": "5"})
    path = "/v1/books"
    sent = 0
    with requests.Session() as s:
        start = time.monotonic()
        while time.monotonic() - start < 0.8 and sent < 100:
            assert get(d, path, s) == 200
            sent += 1
        for _ in range(10):  # errors are never left out
            assert get(d, "/v1/books/987654", s) == 404
    assert sent > 20, f"only {sent} requests in 0.8 s: the test needs more"
    time.sleep(1.1)  # the next second: the next success says how many were left out
    with requests.Session() as s:
        assert get(d, path, s) == 200

    def accounted():
        summary = [r for r in d.log_records() if "ACCESS_LOG_LEFT_OUT" in r]
        written = len(records_for(d, path))
        left_out = sum(int(r["ACCESS_LOG_LEFT_OUT"]) for r in summary)
        return (written, left_out) if summary and written + left_out == sent + 1 else None

    written, left_out = wait_for(accounted, scaled(3),
                                 message=f"records plus left-out counts adding up to {sent + 1}")
    # at most 5 per second over the seconds of sending, plus the last
    assert written <= 5 * 4 + 1, f"{written} records of {sent + 1} successes with a budget of 5/s"
    assert left_out > 0
    assert len(records_for(d, "/v1/books/987654")) == 10


@pytest.mark.parametrize("env", [{"ACCESS_LOG": "some"}, {"ACCESS_LOG_MAX_PER_S": "-1"},
                                 {"ACCESS_LOG_MAX_PER_S": "lots"}])
def test_bad_values_are_configuration_errors(daemons, pg, env):
    d = daemons.spawn(daemons.env_for(pg.dsn_uri(pg.new_db()), None, env), port=None)
    rc = d.wait(scaled(10))
    name = next(iter(env))
    assert rc == 78, f"{env}: exit {rc}\n{d.stderr_text()}"
    assert name in d.stderr_text() + d.stdout_text()


def test_client_address_is_the_peer_unless_a_trusted_proxy_says(daemons):
    """CLIENT_ADDRESS=: the peer; X-Forwarded-For only from TRUSTED_PROXIES,
    read from the right past trusted hops."""
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    plain = daemons.start()
    assert requests.get(plain.url("/v1/books?limit=1"), headers=forged, timeout=5).ok
    behind = daemons.start(env={"TRUSTED_PROXIES": "127.0.0.1"})
    assert requests.get(behind.url("/v1/books?limit=1"), headers=forged, timeout=5).ok
    assert requests.get(behind.url("/v1/books?limit=2"), timeout=5).ok
    wait_for(lambda: len(records_for(plain, "/v1/books")) == 1
             and len(records_for(behind, "/v1/books")) == 2, scaled(3), message="the records")
    assert records_for(plain, "/v1/books")[0]["CLIENT_ADDRESS"] == "127.0.0.1"
    assert [r["CLIENT_ADDRESS"] for r in records_for(behind, "/v1/books")] \
        == ["203.0.113.9", "127.0.0.1"]
