#!/bin/bash
# tests/monitoring/run.sh: prove monitoring/ (issue "Monitoring that works
# against a real Prometheus").
#
#   tests/monitoring/run.sh        (BOOKSTORE_BUILD_DIR: the daemons; default build/)
#
# 1. promtool check config / check rules on the shipped files;
# 2. promtool test rules: unit tests of every alert (tests/monitoring/rules/);
# 3. every alert has its labels, annotations and a runbook section;
# 4. the Grafana dashboards and provisioning files are well formed, and every
#    panel expression is valid PromQL;
# 5. Debian's prometheus against the real stack (pytest: real PostgreSQL,
#    Redis, Books, Orders and worker, real traffic and a Books outage).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
say() { printf '== %s\n' "$*"; }

say "promtool check config monitoring/prometheus.yml"
promtool check config monitoring/prometheus.yml
say "promtool check rules monitoring/rules/*.yml"
promtool check rules monitoring/rules/*.yml
say "promtool test rules tests/monitoring/rules/*_test.yml"
promtool test rules tests/monitoring/rules/*_test.yml
say "alert labels, annotations and runbooks"
/usr/bin/python3 tests/monitoring/check_rules.py
say "Grafana dashboards and provisioning"
/usr/bin/python3 tests/monitoring/dashboards.py monitoring
say "Prometheus against the running stack"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/monitoring
