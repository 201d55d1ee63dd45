"""A real Prometheus (Debian's /usr/bin/prometheus) on a free loopback port,
scraping the test's daemons with monitoring/prometheus.yml's jobs and
relabelling and evaluating monitoring/rules/, every second."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import yaml

from harness import REPO_ROOT, free_port, wait_for

MONITORING = REPO_ROOT / "monitoring"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def config_for(targets, self_port):
    """monitoring/prometheus.yml with the targets replaced (job → [host:port])
    and 1 s intervals; jobs, metric paths and relabelling stay as shipped."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / "rules" / "*.yml")]
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "books", "orders", "worker"}, sorted(jobs)
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{self_port}"]}]
    for job, addresses in targets.items():
        jobs[job]["static_configs"] = [{"targets": list(addresses)}]
    return config


class PrometheusServer:
    def __init__(self, targets):
        self.dir = Path(tempfile.mkdtemp(prefix="bookstore-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = self.dir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config_for(targets, self.port)))
        self.log_path = self.dir / "prometheus.log"
        self.proc = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config_path}",
                 f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h", "--log.level=warn",
                 # trace ids on latency buckets (docs/operations.md, "Tracing")
                 "--enable-feature=exemplar-storage"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._ready, 60, interval=0.2, message=f"Prometheus ready on {self.url}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    # ---- HTTP API ----------------------------------------------------------

    def _api(self, path, **params):
        resp = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = resp.json()
        assert resp.status_code == 200 and body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr):
        """The samples of an instant query that yields a vector ([]: no data)."""
        data = self._api("query", query=expr, time=f"{time.time():.3f}")
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def targets(self):
        return self._api("targets", state="active")["activeTargets"]

    def rules(self):
        return self._api("rules", type="alert")["groups"]

    def alert_states(self, alertname):
        """{state} of the alerts named alertname (pending, firing)."""
        return {a["state"] for a in self._api("alerts")["alerts"]
                if a["labels"].get("alertname") == alertname}

    def wait_alert(self, alertname, timeout, states=("pending", "firing")):
        return wait_for(lambda: self.alert_states(alertname) & set(states), timeout, interval=0.5,
                        message=f"alert {alertname} {'/'.join(states)}")

    def wait_scraped(self, job, value, timeout):
        """Wait until up{job} is value for every target of the job."""
        def done():
            samples = self.query(f'up{{job="{job}"}}')
            return samples and all(float(s["value"][1]) == value for s in samples)
        wait_for(done, timeout, interval=0.5, message=f'up{{job="{job}"}} == {value}')
