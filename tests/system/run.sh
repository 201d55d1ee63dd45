#!/bin/bash
# tests/system/run.sh: prove the Debian packages on a real, booted systemd.
#
# Builds the .debs (tests/packaging/build-debs.sh, or takes them from DEBS_DIR),
# prepares a Debian 12 root with debootstrap (PostgreSQL, Redis, curl, jq and the
# packages' run-time libraries installed; cached, rebuilt when its package list
# changes), boots it under systemd-nspawn with --volatile=overlay (the cached root
# is never changed) and --private-network, installs the packages with apt and
# checks what an operator relies on: units active and enabled, databases with
# least-privilege roles, the bearer tokens postinst makes (writes without one
# refused), the seed's curl workflow with the admin's token and the worker taking
# an order to "completed" and sending its notification, bookstore-enqueue (the
# worker's own token), a second worker from the bookstore-worker@ template, a
# token added and revoked by systemctl reload, the packaged write rate limit,
# structured journal fields, the packaged Prometheus configuration and rules
# scraping the packaged services, stop/start of bookstore.target, restarts after
# SIGKILL and after a watchdog timeout, PostgreSQL and Redis restarted under the
# services, socket activation, upgrades (from an older build, and the same
# version again; the tokens kept), remove and purge (the tokens, and the Redis
# passwords and drop-ins of bookstore-setup-redis, removed). The packages are
# first installed as an "older build": a copy of the same .debs
# re-versioned to $OLD_VERSION (tests/packaging/reversion-debs.sh), upgraded
# later to the real ones. Every check prints "ok" or "FAIL"; the exit status is
# non-zero when any check failed. See /work/shared/recipes/booted-container.md
# for why the container is driven the way it is.
#
#   tests/system/run.sh
#
# Environment:
#   DEBS_DIR              use the .debs in this directory instead of building them
#   BOOKSTORE_ROOT_CACHE  the prepared root (default /var/cache/bookstore/test-root-bookworm)
#   BOOKSTORE_DEBIAN_MIRROR, BOOKSTORE_SECURITY_MIRROR
#                         override the mirrors found in the host's apt sources
#   KEEP_LOGS=1           keep the log directory (always kept when a check failed)
#
# Needs root (debootstrap, systemd-nspawn, nsenter).
#
# Scripts run inside the container (and format strings) are single-quoted on purpose:
# shellcheck disable=SC2016
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${BOOKSTORE_ROOT_CACHE:-/var/cache/bookstore/test-root-bookworm}
SUITE=bookworm
DEBOOTSTRAP_INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd
ROOT_PACKAGES=(postgresql redis-server curl jq ca-certificates)
ROOT_RECIPE=3 # bump when the way the root is prepared changes (3: for the worker)
HOST_TOOLS=(debootstrap:debootstrap systemd-nspawn:systemd-container dh:debhelper
  lintian:lintian dpkg-buildpackage:dpkg-dev jq:jq nsenter:util-linux pgrep:procps
  prometheus:prometheus promtool:prometheus)
IN_DEBS=/srv/bookstore-debs # where the container sees the .debs
IN_OLD_DEBS=/srv/bookstore-debs-old # and the "older build"
OLD_VERSION=0.0.9
PACKAGES=(bookstore-common bookstore-books bookstore-orders bookstore-worker bookstore-monitoring)
SERVICES=(bookstore-books bookstore-orders bookstore-worker)
BOOKS=http://127.0.0.1:8001
ORDERS=http://127.0.0.1:8082
WORKER=http://127.0.0.1:9100
WORKER2_PORT=9102 # bookstore-worker@2's metrics port

export LANG=C.UTF-8 LC_ALL=C.UTF-8

# --- output ------------------------------------------------------------------

T0=$SECONDS
FAILS=()
SECTION_NAMES=() SECTION_SECS=() SECTION_RESULTS=()
section_name='' section_start=0 section_fails=0
declare -A dumped=()

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }
die() {
  printf '\nFATAL: %s\n' "$*"
  FAILS+=("${section_name:-setup}: FATAL: $*")
  exit 1
}

end_section() { # [RESULT]
  [[ -n $section_name ]] || return 0
  SECTION_NAMES+=("$section_name")
  SECTION_SECS+=($((SECONDS - section_start)))
  if [[ -n ${1:-} ]]; then SECTION_RESULTS+=("$1")
  elif ((section_fails)); then SECTION_RESULTS+=("FAIL($section_fails)")
  else SECTION_RESULTS+=(ok); fi
  section_name=''
}

section() {
  end_section
  section_name=$1 section_start=$SECONDS section_fails=0
  dumped=()
  printf '\n'
  say "=== $section_name"
}

ok() { printf '  ok    %s\n' "$*"; }
info() { printf '  ..    %s\n' "$*"; }
indent() { sed 's/^/        | /'; }

# fail UNIT MESSAGE [DETAILS]: record a failed check; show the details and, once
# per section, the unit's journal.
fail() {
  local unit=$1 msg=$2 details=${3:-}
  printf '  FAIL  %s\n' "$msg"
  [[ -z $details ]] || head -c 4000 <<<"$details" | indent
  FAILS+=("$section_name: $msg")
  section_fails=$((section_fails + 1))
  if [[ -n $unit && -z ${dumped[$unit]:-} && -n ${LEADER:-} ]]; then
    dumped[$unit]=1
    printf '        journalctl -u %s (last 60 lines):\n' "$unit"
    cin journalctl -u "$unit" -n 60 --no-pager -o short-precise 2>&1 | indent || true
  fi
}

# check UNIT DESCRIPTION COMMAND...: ok when COMMAND succeeds, else FAIL with its output
check() {
  local unit=$1 desc=$2 out
  shift 2
  if out=$("$@" 2>&1); then ok "$desc"; else fail "$unit" "$desc" "$out"; fi
}

# expect_eq UNIT DESCRIPTION EXPECTED ACTUAL
expect_eq() {
  if [[ $4 == "$3" ]]; then ok "$2"; else fail "$1" "$2" "expected: $3"$'\n'"got:      $4"; fi
}

# --- the container -------------------------------------------------------------

NSPAWN_PID='' LEADER='' BUILDING_ROOT='' WORK='' LOGS='' BOUNDED_PID='' PROM_PID=''

# bounded SECONDS COMMAND...: COMMAND under timeout, waited for in the background
# so that an interrupt reaches the trap at once instead of after the step
bounded() {
  local secs=$1
  shift
  timeout --kill-after=10 "$secs" "$@" &
  BOUNDED_PID=$!
  wait "$BOUNDED_PID"
}

# cin COMMAND...: run a command inside the booted container (clean environment,
# stdin from /dev/null), bounded by CIN_TIMEOUT seconds (default 60)
cin() {
  bounded "${CIN_TIMEOUT:-60}" \
    nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" </dev/null
}

# csh SCRIPT [ARGS...]: a bash script inside the container
csh() {
  local script=$1
  shift
  cin bash -c "$script" bash "$@"
}

prop() { cin systemctl show -P "$2" "$1" 2>/dev/null || true; }

# wait_until SECONDS COMMAND...: poll every 0.5 s until COMMAND succeeds
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# http METHOD URL [CURL ARGS...]: sets HTTP_STATUS, HTTP_HEADERS, HTTP_BODY. Sends
# "Authorization: Bearer $AUTH" when AUTH is set (the packaged default needs a
# token on writes and on /v1/orders): "AUTH='' http ..." sends none.
HTTP_STATUS='' HTTP_HEADERS='' HTTP_BODY='' AUTH=''
http() {
  local method=$1 url=$2 raw auth=()
  shift 2
  [[ -z $AUTH ]] || auth=(-H "Authorization: Bearer $AUTH")
  if ! raw=$(CIN_TIMEOUT=20 cin curl -sS -i --max-time 10 -H 'Expect:' "${auth[@]}" -X "$method" "$@" "$url" 2>&1); then
    HTTP_STATUS=000 HTTP_HEADERS='' HTTP_BODY=$raw
    return 0
  fi
  raw=${raw//$'\r'/}
  HTTP_HEADERS=${raw%%$'\n\n'*}
  HTTP_BODY=${raw#*$'\n\n'}
  HTTP_STATUS=$(head -n 1 <<<"$HTTP_HEADERS" | cut -d ' ' -f 2)
}
header() { grep -i "^$1:" <<<"$HTTP_HEADERS" | head -n 1 | cut -d ' ' -f 2- || true; }
json_is() { jq -e "$1" <<<"$HTTP_BODY" >/dev/null 2>&1; }
show_http() { printf 'HTTP %s\n%s\n\n%s' "$HTTP_STATUS" "$HTTP_HEADERS" "$HTTP_BODY"; }

healthy() { # healthy books|orders|worker [URL]: /health answers 200 with docs/api.md's JSON
  local url=$BOOKS want='{"services":{"database":"healthy"},"status":"healthy"}'
  if [[ $1 == orders ]]; then
    url=$ORDERS want='{"services":{"books":"healthy","database":"healthy","redis":"healthy"},"status":"healthy"}'
  elif [[ $1 == worker ]]; then
    url=${2:-$WORKER} want='{"services":{"redis":"healthy"},"status":"healthy"}'
  fi
  http GET "$url/health"
  [[ $HTTP_STATUS == 200 && $(jq -cS . <<<"$HTTP_BODY" 2>/dev/null) == "$want" ]]
}

create_order() { # create_order BOOK_ID [CURL ARGS...]: 201 expected
  local book=$1
  shift
  http POST "$ORDERS/v1/orders" -H 'Content-Type: application/json' \
    -d "{\"book_id\": $book, \"quantity\": 2}" "$@"
  [[ $HTTP_STATUS == 201 ]]
}

stop_prometheus() {
  [[ -n $PROM_PID ]] || return 0
  kill -TERM "$PROM_PID" 2>/dev/null || true
  timeout 30 tail --pid="$PROM_PID" -f /dev/null || kill -KILL "$PROM_PID" 2>/dev/null || true
  wait "$PROM_PID" 2>/dev/null || true
  PROM_PID=''
}

poweroff_container() {
  stop_prometheus
  [[ -n $NSPAWN_PID ]] || return 0
  if kill -0 "$NSPAWN_PID" 2>/dev/null; then
    [[ -z $LEADER ]] || CIN_TIMEOUT=15 cin systemctl poweroff --no-block >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      echo "poweroff: the container did not stop within 60 s; terminating systemd-nspawn" >&2
      kill -TERM "$NSPAWN_PID" 2>/dev/null || true
      deadline=$((SECONDS + 20))
      while kill -0 "$NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
      [[ -z $LEADER ]] || kill -KILL "$LEADER" 2>/dev/null || true
      kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
  fi
  wait "$NSPAWN_PID" 2>/dev/null || true
  NSPAWN_PID='' LEADER=''
}

remove_tree() { # unmount anything left below a half-built root, then remove it
  local dir=$1 m
  [[ -n $dir && -d $dir ]] || return 0
  while read -r m; do umount -l "$m" 2>/dev/null || true; done \
    < <(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true)
  rm -rf --one-file-system "$dir"
}

summary() { # EXIT_STATUS
  local i
  if (($1 != 0)); then end_section ABORTED; else end_section; fi
  printf '\n'
  say "=== summary"
  for i in "${!SECTION_NAMES[@]}"; do
    printf '  %-50s %5ss  %s\n' "${SECTION_NAMES[$i]}" "${SECTION_SECS[$i]}" "${SECTION_RESULTS[$i]}"
  done
  printf '  %-50s %5ss\n' total $((SECONDS - T0))
  if ((${#FAILS[@]})); then
    printf '\n%d check(s) FAILED:\n' "${#FAILS[@]}"
    printf '  - %s\n' "${FAILS[@]}"
  elif (($1 != 0)); then
    printf '\nABORTED (exit status %d)\n' "$1"
  else
    printf '\nall checks passed\n'
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  exec 1>&7 2>&8 # the trap may run inside a step whose output goes to a log
  if [[ -n $BOUNDED_PID ]] && kill -0 "$BOUNDED_PID" 2>/dev/null; then
    kill -TERM "$BOUNDED_PID" 2>/dev/null # timeout passes it on to the step
    local deadline=$((SECONDS + 15))
    while kill -0 "$BOUNDED_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$BOUNDED_PID" 2>/dev/null
    wait "$BOUNDED_PID" 2>/dev/null
  fi
  poweroff_container
  remove_tree "$BUILDING_ROOT"
  summary "$status"
  if ((status != 0 || ${#FAILS[@]})) || [[ -n ${KEEP_LOGS:-} ]]; then
    [[ -z $LOGS ]] || printf 'logs: %s\n' "$LOGS"
  else
    rm -rf "$LOGS"
  fi
  [[ -z $WORK ]] || rm -rf "$WORK"
  ((status != 0)) || ((${#FAILS[@]} == 0)) || status=1
  exit "$status"
}
exec 7>&1 8>&2
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- host preparation ------------------------------------------------------------

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, systemd-nspawn and nsenter need it)"

WORK=$(mktemp -d /tmp/bookstore-system.XXXXXX)
LOGS=$(mktemp -d /tmp/bookstore-system-logs.XXXXXX)

section "host tools"
apt_updated=''
host_install() { # host_install PACKAGE...
  [[ -n $apt_updated ]] || bounded 300 apt-get update -qq || die "apt-get update failed"
  apt_updated=1
  say "installing ${*} on the host (log in $LOGS/host-apt.log)"
  DEBIAN_FRONTEND=noninteractive bounded 900 apt-get install -y -q --no-install-recommends "$@" \
    >>"$LOGS/host-apt.log" 2>&1 || { tail -n 30 "$LOGS/host-apt.log"; die "apt-get install $* failed"; }
  ok "installed $*"
}
missing=()
for tool in "${HOST_TOOLS[@]}"; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
((${#missing[@]} == 0)) || host_install "${missing[@]}"
if [[ -z ${DEBS_DIR:-} ]]; then
  # the build dependencies of debian/control: the first alternative apt knows
  unmet=$(dpkg-checkbuilddeps "$ROOT_DIR/debian/control" 2>&1 | sed -n 's/.*Unmet build dependencies: //p') || true
  if [[ -n $unmet ]]; then
    [[ -n $apt_updated ]] || bounded 300 apt-get update -qq || die "apt-get update failed"
    apt_updated=1
    missing=()
    read -r -a groups <<<"$(sed -E 's/\([^)]*\)//g; s/\[[^]]*\]//g; s/<[^>]*>//g; s/ *\| */|/g' <<<"$unmet")"
    for group in "${groups[@]}"; do
      IFS='|' read -r -a alternatives <<<"$group"
      for p in "${alternatives[@]}"; do
        if apt-cache show "$p" >/dev/null 2>&1; then missing+=("$p") && break; fi
      done
    done
    ((${#missing[@]} == 0)) || host_install "${missing[@]}"
  fi
fi
ok "debootstrap, systemd-nspawn, debhelper, lintian and the build dependencies are here"

# systemd-nspawn needs a tmpfs there when the host's /run is not one
if ! mountpoint -q /run/systemd/nspawn; then
  mkdir -p /run/systemd/nspawn
  timeout 10 mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
fi

section "packages"
if [[ -n ${DEBS_DIR:-} ]]; then
  DEBS=$(cd "$DEBS_DIR" && pwd)
  ok "using the .debs in $DEBS"
else
  DEBS=$WORK/debs
  say "building the .debs (tests/packaging/build-debs.sh, log in $LOGS/build-debs.log)"
  bounded 900 "$ROOT_DIR/tests/packaging/build-debs.sh" "$DEBS" >"$LOGS/build-debs.log" 2>&1 || {
    tail -n 40 "$LOGS/build-debs.log"
    die "building the .debs failed"
  }
  ok "built; lintian passed (--fail-on error,warning)"
fi
deb_files=()
for p in "${PACKAGES[@]}"; do
  f=("$DEBS/${p}"_*.deb)
  [[ ${#f[@]} -eq 1 && -f ${f[0]} ]] || die "expected one ${p}_*.deb in $DEBS, found: ${f[*]}"
  deb_files+=("${f[0]}")
  info "$(dpkg-deb -f "${f[0]}" Package Version | paste -sd ' ') (${f[0]##*/})"
done
in_debs=("${deb_files[@]/#"$DEBS"/$IN_DEBS}")
VERSION=$(dpkg-deb -f "${deb_files[0]}" Version)

# the "older build" to upgrade from: the same packages under an older version
dpkg --compare-versions "$OLD_VERSION" lt "$VERSION" || die "the packages' version $VERSION is not above $OLD_VERSION"
OLD_DEBS=$WORK/old-debs
bounded 120 "$ROOT_DIR/tests/packaging/reversion-debs.sh" "$OLD_VERSION" "$OLD_DEBS" "${deb_files[@]}" \
  >"$LOGS/reversion-debs.log" 2>&1 || { cat "$LOGS/reversion-debs.log"; die "re-versioning the .debs failed"; }
old_deb_files=()
for p in "${PACKAGES[@]}"; do old_deb_files+=("$OLD_DEBS/${p}_${OLD_VERSION}_"*.deb); done
in_old_debs=("${old_deb_files[@]/#"$OLD_DEBS"/$IN_OLD_DEBS}")
ok "an older build to upgrade from: the same .debs as version $OLD_VERSION (tests/packaging/reversion-debs.sh)"

# the root has no network once booted: the packages' run-time dependencies go
# into it beforehand (first alternative, no versions, not our own packages)
mapfile -t runtime_deps < <(for f in "${deb_files[@]}"; do dpkg-deb -f "$f" Depends; done \
  | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' \
  | grep -v -e '^$' -e '^bookstore-' | sort -u)

# --- the prepared root -------------------------------------------------------------

section "Debian 12 root"

find_mirror() { # find_mirror SUITE: the host's apt URI for SUITE main
  apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
    'Identifier: Packages' 2>/dev/null | awk -v s="$1" '$2 == s && $3 == "main" { print $1; exit }'
}
# No mirror is written here: the host's apt configuration names it.
MIRROR=${BOOKSTORE_DEBIAN_MIRROR:-$(find_mirror "$SUITE")}
[ -n "$MIRROR" ] || die "no apt source for $SUITE main on this host; set BOOKSTORE_DEBIAN_MIRROR"
SECURITY=${BOOKSTORE_SECURITY_MIRROR:-$(find_mirror "$SUITE-security")}
mapfile -t packages < <(printf '%s\n' "${ROOT_PACKAGES[@]}" "${runtime_deps[@]}" | sort -u)
key=$(printf '%s\n' "recipe=$ROOT_RECIPE" "suite=$SUITE" "include=$DEBOOTSTRAP_INCLUDE" \
  "mirror=$MIRROR" "security=$SECURITY" "${packages[@]}" | sha256sum | cut -c 1-16)
KEY_FILE=.bookstore-test-root # in the root: written last, so only a complete root has it

root_is_current() { [[ -f $CACHE/$KEY_FILE && $(cat "$CACHE/$KEY_FILE") == "$key" ]]; }

build_root() {
  local tmp
  for tmp in "$CACHE".tmp.*; do remove_tree "$tmp"; done # from an interrupted build
  tmp=$(mktemp -d "$CACHE.tmp.XXXXXX")
  BUILDING_ROOT=$tmp
  chmod 0755 "$tmp"
  say "debootstrap $SUITE from $MIRROR (log in $LOGS/debootstrap.log)"
  bounded 1200 debootstrap --variant=minbase --include="$DEBOOTSTRAP_INCLUDE" \
    "$SUITE" "$tmp" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 || {
    tail -n 30 "$LOGS/debootstrap.log"
    die "debootstrap failed"
  }
  cat >"$tmp/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
${SECURITY:+deb $SECURITY $SUITE-security main}
EOF
  # no daemon may start while the packages are installed outside a booted system
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  say "apt-get install ${packages[*]} (log in $LOGS/root-apt.log)"
  bounded 1200 systemd-nspawn -q -D "$tmp" --register=no --keep-unit \
    -E DEBIAN_FRONTEND=noninteractive -E LANG=C.UTF-8 \
    sh -c 'apt-get update -qq && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
    sh "${packages[@]}" >"$LOGS/root-apt.log" 2>&1 || {
    tail -n 30 "$LOGS/root-apt.log"
    die "installing packages into the root failed"
  }
  # booted with --private-network there is only lo, and networkd-wait-online would
  # hold network-online.target (and so the services' start, and apt) for 2 minutes
  bounded 60 systemd-nspawn -q -D "$tmp" --register=no --keep-unit \
    systemctl mask systemd-networkd-wait-online.service >>"$LOGS/root-apt.log" 2>&1
  rm -f "$tmp/usr/sbin/policy-rc.d" "$tmp/etc/machine-id"
  echo "$key" >"$tmp/$KEY_FILE"
  if [[ -e $CACHE ]]; then
    mv "$CACHE" "$CACHE.old.$$"
    remove_tree "$CACHE.old.$$"
  fi
  mv "$tmp" "$CACHE"
  BUILDING_ROOT=''
}

mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock" # shared while a run uses the root, exclusive while one builds it
flock -w 1800 -s 9 || die "timed out waiting for the lock on $CACHE"
if root_is_current; then
  ok "cached root $CACHE is current (key $key)"
else
  flock -u 9
  flock -w 3600 -x 9 || die "timed out waiting for the lock on $CACHE"
  if root_is_current; then
    ok "cached root $CACHE was just built by another run (key $key)"
  else
    build_root
    ok "built $CACHE (key $key)"
  fi
  flock -s 9 # keep it from being rebuilt under the running container
fi
info "packages: ${packages[*]}"

# --- boot ------------------------------------------------------------------------------

section "boot"
MACHINE=bookstore-test-$$
setsid systemd-nspawn -D "$CACHE" -M "$MACHINE" --register=no --keep-unit \
  --volatile=overlay --private-network --bind-ro="$DEBS:$IN_DEBS" --bind-ro="$OLD_DEBS:$IN_OLD_DEBS" \
  --console=passive -b >"$LOGS/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
deadline=$((SECONDS + 30))
until LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd); do
  kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$LOGS/console.log"; die "systemd-nspawn exited"; }
  ((SECONDS < deadline)) || { cat "$LOGS/console.log"; die "no systemd in the container after 30 s"; }
  sleep 0.2
done
state=''
deadline=$((SECONDS + 90))
until [[ $state == running || $state == degraded ]]; do
  ((SECONDS < deadline)) || { tail -n 40 "$LOGS/console.log"; die "system not up after 90 s (state: $state)"; }
  sleep 0.5
  state=$(CIN_TIMEOUT=10 cin systemctl is-system-running 2>/dev/null || true)
done
ok "booted: systemd pid $LEADER on the host, is-system-running: $state"
if [[ $state == degraded ]]; then
  info "failed units: $(cin systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd ' ')"
fi
for u in postgresql redis-server; do
  check "$u" "$u is active" cin systemctl is-active "$u"
done

# --- install ---------------------------------------------------------------------------

section "install (the older build, $OLD_VERSION)"
t=$SECONDS
if CIN_TIMEOUT=300 cin DEBIAN_FRONTEND=noninteractive apt-get install -y "${in_old_debs[@]}" \
  >"$LOGS/apt-install.log" 2>&1; then
  ok "apt-get install -y ${in_old_debs[*]##*/} ($((SECONDS - t)) s)"
  # deb-systemd-invoke waits for the start jobs: a slow one holds apt
  ((SECONDS - t < 60)) || fail "" "apt-get install took under 60 s" "$((SECONDS - t)) s"
else
  fail "" "apt-get install of the .debs" "$(tail -n 40 "$LOGS/apt-install.log")"
  die "the packages did not install"
fi
if grep -q 'database not set up' "$LOGS/apt-install.log"; then
  fail "" "postinst set up the databases" "$(grep -B 5 -A 2 'database not set up' "$LOGS/apt-install.log")"
else
  ok "postinst ran bookstore-setup-database without complaint"
fi
grep -E '^bookstore: ' "$LOGS/apt-install.log" | sed 's/^/  ..    postinst: /' || true

section "units after install"
for svc in "${SERVICES[@]}"; do
  wait_until 30 cin systemctl is-active --quiet "$svc" || true
  expect_eq "$svc" "$svc is-active" active "$(cin systemctl is-active "$svc" || true)"
  expect_eq "$svc" "$svc is-enabled" enabled "$(cin systemctl is-enabled "$svc" || true)"
  check "$svc" "systemctl status $svc: exit 0, active (running)" \
    csh 'out=$(systemctl status --no-pager -n 0 "$1") && grep -q "Active: active (running)" <<<"$out" || { echo "$out"; false; }' "$svc"
  expect_eq "$svc" "$svc Result=success NRestarts=0" "success 0" "$(prop "$svc" Result) $(prop "$svc" NRestarts)"
  errors=$(cin journalctl -u "$svc" -p err --no-pager -o short-precise -q || true)
  if [[ -z $errors ]]; then ok "$svc: no error-level journal entries"; else fail "$svc" "$svc logged errors" "$errors"; fi
  pid=$(prop "$svc" MainPID)
  expect_eq "$svc" "$svc runs as its system user" "$svc bookstore" \
    "$(cin stat -c '%U %G' "/proc/$pid" 2>&1 || true)"
  info "$svc status: $(prop "$svc" StatusText)"
done
expect_eq "" "bookstore.target is-enabled" enabled "$(cin systemctl is-enabled bookstore.target || true)"
for s in bookstore-books.socket bookstore-orders.socket; do
  expect_eq "${s%.socket}" "$s not enabled or started by default (socket activation is opt-in)" \
    "disabled inactive" "$(cin systemctl is-enabled "$s" || true) $(cin systemctl is-active "$s" || true)"
done
failed=$(cin systemctl list-units --failed --no-legend --plain 'bookstore*' || true)
if [[ -z $failed ]]; then ok "no failed bookstore units"; else fail "" "failed bookstore units" "$failed"; fi
expect_eq "" "system users and group" \
  "bookstore-books:bookstore bookstore-orders:bookstore bookstore-worker:bookstore" \
  "$(csh 'for u in "$@"; do printf "%s:%s " "$u" "$(id -gn "$u")"; done' "${SERVICES[@]}" | sed 's/ $//')"
expect_eq "" "/etc/bookstore 0750 root:bookstore, env files 0640 root:bookstore" \
  "750 root:bookstore|640 root:bookstore|640 root:bookstore|640 root:bookstore" \
  "$(cin stat -c '%a %U:%G' /etc/bookstore /etc/bookstore/{books,orders,worker}.env | paste -sd '|')"
expect_eq bookstore-worker "bookstore-worker@.service is installed, no instance runs by default" \
  "bookstore-worker@.service disabled|" \
  "$(cin systemctl list-unit-files --no-legend --plain 'bookstore-worker@*' | awk '{ print $1, $2 }')|$(
    cin systemctl list-units --no-legend --plain 'bookstore-worker@*' || true)"
if wait_until 15 healthy worker; then ok "GET :9100/health → 200 $HTTP_BODY"
else fail bookstore-worker "worker /health is 200 with Redis healthy" "$(show_http)"; fi

# --- bearer tokens ---------------------------------------------------------------------------

section "bearer tokens: made by postinst"
TOKENS=/etc/bookstore/tokens
expect_eq "" "$TOKENS 0750 root:bookstore; admin.token, worker.token 0600 root; api-tokens 0640 root:bookstore" \
  "750 root:bookstore|600 root:root|600 root:root|640 root:bookstore" \
  "$(cin stat -c '%a %U:%G' "$TOKENS" "$TOKENS"/{admin.token,worker.token,api-tokens} 2>&1 | paste -sd '|')"
ADMIN_TOKEN=$(cin cat "$TOKENS/admin.token" 2>/dev/null || true)
WORKER_TOKEN=$(cin cat "$TOKENS/worker.token" 2>/dev/null || true)
if [[ $ADMIN_TOKEN =~ ^[0-9a-f]{64}$ && $WORKER_TOKEN =~ ^[0-9a-f]{64}$ && $ADMIN_TOKEN != "$WORKER_TOKEN" ]]; then
  ok "two different tokens of 64 hex digits (32 random bytes)"
else
  fail "" "admin.token and worker.token hold two different tokens of 64 hex digits" \
    "$(cin ls -la "$TOKENS" 2>&1)"
fi
sha() { printf '%s' "$1" | sha256sum | cut -d ' ' -f 1; }
expect_eq "" "api-tokens: admin and worker, by the SHA-256 of their tokens (no token in it)" \
  "admin:$(sha "$ADMIN_TOKEN")|worker:$(sha "$WORKER_TOKEN")" \
  "$(cin grep -v -e '^#' -e '^$' "$TOKENS/api-tokens" 2>&1 | paste -sd '|')"
check "" "postinst said where the tokens are (once, at the first install)" \
  grep -q -F "the administrator's token: $TOKENS/admin.token" "$LOGS/apt-install.log"
readme=$(sed -n 's/^bookstore: .*to add, rotate or revoke tokens: \(\/[^ ]*\) .*/\1/p' "$LOGS/apt-install.log")
check "" "the tokens guide it names (docs/operations.md) is installed: ${readme:-(none named)}" \
  csh 'test -f "$1" || { ls -l /usr/share/doc/bookstore-common; false; }' "${readme:-/nonexistent}"
for svc in bookstore-books bookstore-orders; do
  check "$svc" "$svc started with tokens on (\"… tokens from API_TOKENS_FILE=$TOKENS/api-tokens\")" \
    csh 'journalctl -u "$1" -o cat --no-pager | grep -F "API_TOKENS_FILE=$2"' "$svc" "$TOKENS/api-tokens"
done
expect_eq bookstore-worker "bookstore-worker has worker.token as its credential orders-api-token (LoadCredential=)" \
  "$WORKER_TOKEN" "$(cin cat /run/credentials/bookstore-worker.service/orders-api-token 2>&1 || true)"
AUTH=$ADMIN_TOKEN # from here on, http sends it

# --- databases -------------------------------------------------------------------------------

section "databases and roles"
as_pg() { cin runuser -u postgres -- psql -X -qAt "$@"; }
for s in books orders; do
  db=${s}_db owner=${s}_owner runtime=bookstore-$s
  expect_eq "" "$db is owned by $owner" "$owner" \
    "$(as_pg -d postgres -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$db'" 2>&1)"
  expect_eq "" "$owner cannot log in; $runtime can, without superuser or CREATEROLE/CREATEDB" \
    "$owner|f|f|f|f $runtime|t|f|f|f" \
    "$(as_pg -d postgres -c "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles
        WHERE rolname IN ('$owner', '$runtime') ORDER BY rolname <> '$owner'" 2>&1 | paste -sd ' ')"
  tables=$(as_pg -d "$db" -c "SELECT tablename || ':' || tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1" 2>&1 || true)
  if [[ -n $tables ]] && ! grep -qv ":$owner\$" <<<"$tables"; then
    ok "$owner owns every table in $db ($(cut -d: -f1 <<<"$tables" | paste -sd ' '))"
  else
    fail "" "$owner owns every table in $db" "$tables"
  fi
  out=$(csh 'cd / && runuser -u "$1" -- psql -X -d "$2" -c "CREATE TABLE x(i int)"' "$runtime" "$db" 2>&1) && rc=0 || rc=$?
  if ((rc != 0)) && grep -q 'permission denied' <<<"$out"; then
    ok "$runtime cannot CREATE TABLE in $db ($(grep -m 1 -o 'permission denied.*' <<<"$out"))"
  else
    fail "" "$runtime cannot CREATE TABLE in $db" "exit $rc: $out"
  fi
  main_table=$s
  out=$(csh 'cd / && runuser -u "$1" -- psql -X -d "$2" -c "ALTER TABLE $3 ADD COLUMN x int"' "$runtime" "$db" "$main_table" 2>&1) && rc=0 || rc=$?
  if ((rc != 0)) && grep -q 'must be owner' <<<"$out"; then
    ok "$runtime cannot ALTER TABLE $main_table ($(grep -m 1 -o 'must be owner.*' <<<"$out"))"
  else
    fail "" "$runtime cannot ALTER TABLE $main_table" "exit $rc: $out"
  fi
  check "" "$runtime can read $db (peer authentication over /var/run/postgresql)" \
    csh 'cd / && runuser -u "$1" -- psql -X -qAt -h /var/run/postgresql -d "$2" -c "SELECT count(*) FROM $3"' \
    "$runtime" "$db" "$main_table"
done

# --- the seed's workflow -----------------------------------------------------------------------

section "end-to-end workflow (curl inside the container)"
for s in books orders; do
  if healthy "$s"; then ok "GET :$([[ $s == books ]] && echo 8001 || echo 8082)/health → 200 $HTTP_BODY"
  else fail "bookstore-$s" "$s /health is 200 with every dependency healthy" "$(show_http)"; fi
done
# unauthorized METHOD URL [CURL ARGS...]: refused with 401, WWW-Authenticate: Bearer, UNAUTHORIZED
unauthorized() {
  http "$@"
  [[ $HTTP_STATUS == 401 && $(header WWW-Authenticate) == Bearer ]] && json_is '.error == "UNAUTHORIZED"'
}
http GET "$BOOKS/v1/books?limit=1"
books_before=$(header X-Total-Count)
if AUTH='' unauthorized POST "$BOOKS/v1/books" -H 'Content-Type: application/json' \
  -d '{"title": "1984", "author": "George Orwell", "price": "15.99"}'; then
  ok "POST :8001/v1/books without a token → 401, WWW-Authenticate: Bearer, UNAUTHORIZED"
else
  fail bookstore-books "POST :8001/v1/books without a token → 401" "$(show_http)"
fi
if AUTH=$(sha "$ADMIN_TOKEN") unauthorized POST "$BOOKS/v1/books" -H 'Content-Type: application/json' \
  -d '{"title": "1984", "author": "George Orwell", "price": "15.99"}'; then
  ok "POST :8001/v1/books with the admin token's hash as a token → 401"
else
  fail bookstore-books "POST :8001/v1/books with a wrong token → 401" "$(show_http)"
fi
AUTH='' http GET "$BOOKS/v1/books?limit=1"
if [[ $HTTP_STATUS == 200 ]]; then
  expect_eq bookstore-books "GET :8001/v1/books without a token → 200: nothing was stored" \
    "$books_before" "$(header X-Total-Count)"
else
  fail bookstore-books "GET :8001/v1/books without a token → 200" "$(show_http)"
fi
if AUTH='' unauthorized POST "$ORDERS/v1/orders" -H 'Content-Type: application/json' \
  -d '{"book_id": 1, "quantity": 2}' && AUTH='' unauthorized GET "$ORDERS/v1/orders"; then
  ok "POST and GET :8082/v1/orders without a token → 401"
else
  fail bookstore-orders "POST and GET :8082/v1/orders without a token → 401" "$(show_http)"
fi
info "from here on with -H \"Authorization: Bearer \$(cat $TOKENS/admin.token)\""
http POST "$BOOKS/v1/books" -H 'Content-Type: application/json' \
  -d '{"title": "1984", "author": "George Orwell", "price": "15.99"}'
BOOK_ID=$(jq -r '.id // empty' <<<"$HTTP_BODY" 2>/dev/null || true)
if [[ $HTTP_STATUS == 201 && -n $BOOK_ID && $(header Location) == "/v1/books/$BOOK_ID" ]] &&
  json_is '.title == "1984" and .author == "George Orwell" and .price == "15.99" and .active == true'; then
  ok "POST :8001/v1/books → 201, Location /v1/books/$BOOK_ID"
else
  fail bookstore-books "POST :8001/v1/books → 201" "$(show_http)"
  BOOK_ID=1
fi
http GET "$BOOKS/v1/books?limit=2&offset=0"
if [[ $HTTP_STATUS == 200 ]] && json_is "map(.id) | index($BOOK_ID) != null"; then
  ok "GET :8001/v1/books lists it (X-Total-Count: $(header X-Total-Count))"
else
  fail bookstore-books "GET :8001/v1/books lists the new book" "$(show_http)"
fi
# the API explorer (docs/api-explorer.md) with the Swagger UI bookstore-common
# ships: open without a token, and no network needed (the container has none)
for url in "$BOOKS" "$ORDERS"; do
  check "" "GET ${url#http://127.0.0.1}/docs → the page, and its Swagger UI from /usr/share/bookstore/swagger-ui" \
    csh 'page=$(curl -fsS --max-time 10 "$1/docs") && grep -q "docs/assets/swagger-ui-bundle.js" <<<"$page" || exit 1
      for f in swagger-ui-bundle.js swagger-ui.css; do
        got=$(curl -fsS --max-time 10 -o /dev/null -w "%{http_code} %{content_type} %{size_download}" "$1/docs/assets/$f")
        want=$(stat -c %s "/usr/share/bookstore/swagger-ui/$f") || exit 1
        [[ $got == "200 text/"*" $want" ]] || { echo "/docs/assets/$f: $got (want 200, $want bytes)"; exit 1; }
      done' "$url"
done

REQUEST_ID=systest-$(date +%s)-$RANDOM
IDEMPOTENCY_KEY=systest-key-$RANDOM$RANDOM
create_order "$BOOK_ID" -H "X-Request-ID: $REQUEST_ID" -H "Idempotency-Key: $IDEMPOTENCY_KEY" || true
ORDER_ID=$(jq -r '.id // empty' <<<"$HTTP_BODY" 2>/dev/null || true)
if [[ $HTTP_STATUS == 201 && -n $ORDER_ID && $(header X-Request-ID) == "$REQUEST_ID" ]] &&
  json_is ".book_id == $BOOK_ID and .book_title == \"1984\" and .book_author == \"George Orwell\"
           and .quantity == 2 and .unit_price == 15.99 and .total_price == 31.98 and .status == \"pending\""; then
  ok "POST :8082/v1/orders (X-Request-ID: $REQUEST_ID) → 201 order $ORDER_ID, total 31.98, pending"
else
  fail bookstore-orders "POST :8082/v1/orders → 201 with the book's snapshot" "$(show_http)"
  ORDER_ID=1
fi
create_order "$BOOK_ID" -H "Idempotency-Key: $IDEMPOTENCY_KEY" || true
if [[ $HTTP_STATUS == 201 && $(header Idempotent-Replayed) == true ]] && json_is ".id == $ORDER_ID"; then
  ok "the same Idempotency-Key again → 201, the same order, Idempotent-Replayed: true"
else
  fail bookstore-orders "Idempotency-Key replay" "$(show_http)"
fi
http GET "$ORDERS/v1/orders/$ORDER_ID"
if [[ $HTTP_STATUS == 200 ]] && json_is ".id == $ORDER_ID and .total_price == 31.98"; then
  ok "GET :8082/v1/orders/$ORDER_ID → 200"
else
  fail bookstore-orders "GET :8082/v1/orders/$ORDER_ID → 200" "$(show_http)"
fi
http GET "$ORDERS/v1/orders?limit=10"
if [[ $HTTP_STATUS == 200 ]] && json_is "map(.id) | index($ORDER_ID) != null"; then
  ok "GET :8082/v1/orders lists it (X-Total-Count: $(header X-Total-Count))"
else
  fail bookstore-orders "GET :8082/v1/orders lists the order" "$(show_http)"
fi

# --- the worker ----------------------------------------------------------------------------------

section "worker: completed order, notification, enqueue"
order_completed() { # order_completed ID: GET /v1/orders/ID says "completed"
  http GET "$ORDERS/v1/orders/$1"
  [[ $HTTP_STATUS == 200 ]] && json_is '.status == "completed"'
}
# notified UNIT ORDER_ID: the journal entry of the order's notification, as JSON
notified() {
  cin journalctl -u "$1" -o json --no-pager NOTIFICATION_TYPE=order.completed "ORDER_ID=$2" |
    jq -ce 'select(.NOTIFICATION_TYPE == "order.completed" and .RECIPIENT != null)' | head -n 1 | grep .
}
if wait_until 30 order_completed "$ORDER_ID"; then
  ok "order $ORDER_ID reached \"completed\" (GET :8082/v1/orders/$ORDER_ID polled)"
else
  fail bookstore-worker "order $ORDER_ID reaches \"completed\" within 30 s" "$(show_http)"
fi
if wait_until 15 notified bookstore-worker "$ORDER_ID"; then
  ok "journalctl -u bookstore-worker: $(notified bookstore-worker "$ORDER_ID" |
    jq -c '{NOTIFICATION_TYPE, ORDER_ID, RECIPIENT, QUEUE, MESSAGE}')"
else
  fail bookstore-worker "journalctl -u bookstore-worker has the notification of order $ORDER_ID (NOTIFICATION_TYPE)" \
    "$(cin journalctl -u bookstore-worker -o json -n 10 --no-pager 2>&1 | jq -c '{MESSAGE, NOTIFICATION_TYPE, ORDER_ID}' 2>&1)"
fi
out=$(CIN_TIMEOUT=45 cin bookstore-enqueue --book-id "$BOOK_ID" --quantity 1 --wait 30 2>&1) && rc=0 || rc=$?
result=$(tail -n 1 <<<"$out")
ENQUEUED_ID=$(jq -r 'select(.outcome == "created") | .order_id // empty' <<<"$result" 2>/dev/null || true)
if ((rc == 0)) && [[ $ENQUEUED_ID =~ ^[0-9]+$ ]]; then
  ok "bookstore-enqueue --book-id $BOOK_ID --quantity 1 --wait 30: exit 0, $(jq -c '{outcome, order_id, http_status}' <<<"$result")"
  http GET "$ORDERS/v1/orders/$ENQUEUED_ID"
  if [[ $HTTP_STATUS == 200 ]] && json_is ".book_id == $BOOK_ID and .quantity == 1"; then
    ok "GET :8082/v1/orders/$ENQUEUED_ID: the enqueued order"
  else
    fail bookstore-orders "the enqueued order $ENQUEUED_ID exists" "$(show_http)"
  fi
  if wait_until 30 order_completed "$ENQUEUED_ID"; then ok "order $ENQUEUED_ID reached \"completed\" too"
  else fail bookstore-worker "order $ENQUEUED_ID reaches \"completed\"" "$(show_http)"; fi
  worker_post() { # the Orders access entry of a POST /v1/orders admitted by the worker's token
    cin journalctl -u bookstore-orders -o json --no-pager AUTH_SUBJECT=worker |
      jq -ce 'select(.HTTP_METHOD == "POST" and .HTTP_PATH == "/v1/orders" and .HTTP_STATUS == "201")' |
      head -n 1 | grep .
  }
  if wait_until 10 worker_post; then
    ok "the worker created it with its own token: $(worker_post | jq -c '{AUTH_SUBJECT, HTTP_METHOD, HTTP_PATH, HTTP_STATUS}')"
  else
    fail bookstore-orders "Orders logged the worker's POST /v1/orders with AUTH_SUBJECT=worker" \
      "$(cin journalctl -u bookstore-orders -o json -n 10 --no-pager 2>&1 | jq -c '{MESSAGE, AUTH_SUBJECT}' 2>&1)"
  fi
else
  fail bookstore-worker "bookstore-enqueue --wait 30 exits 0 with an order created" "exit $rc: $out"
fi
out=$(CIN_TIMEOUT=20 cin bookstore-enqueue --book-id 0 --quantity 1 2>&1) && rc=0 || rc=$?
expect_eq "" "bookstore-enqueue --book-id 0: usage error, exit 64" 64 "$rc"

section "a second worker: bookstore-worker@2"
HOST=$(cin hostname)
out=$(CIN_TIMEOUT=30 cin systemctl start bookstore-worker@3 2>&1) && rc=0 || rc=$?
if ((rc != 0)) && [[ $out == *'Assertion failed'* && $(prop bookstore-worker@3 AssertResult) == no ]]; then
  ok "without /etc/bookstore/worker-3.env, systemctl start bookstore-worker@3 fails (AssertPathExists): $out"
else
  fail bookstore-worker@3 "bookstore-worker@3 without its env file fails on AssertPathExists" \
    "exit $rc: $out"$'\n'"$(cin systemctl status --no-pager bookstore-worker@3 2>&1)"
fi
cin systemctl reset-failed bookstore-worker@3 >/dev/null 2>&1 || true
check bookstore-worker@2 "/etc/bookstore/worker-2.env with WORKER_METRICS_PORT=$WORKER2_PORT; systemctl enable --now bookstore-worker@2" \
  csh 'printf "WORKER_METRICS_PORT=%s\n" "$1" >/etc/bookstore/worker-2.env && systemctl enable --now bookstore-worker@2' \
  "$WORKER2_PORT"
wait_until 30 cin systemctl is-active --quiet bookstore-worker@2 || true
expect_eq bookstore-worker@2 "bookstore-worker@2 active and enabled" "active enabled" \
  "$(cin systemctl is-active bookstore-worker@2 || true) $(cin systemctl is-enabled bookstore-worker@2 || true)"
expect_eq bookstore-worker@2 "bookstore-worker@2 Result=success NRestarts=0, runs as bookstore-worker" \
  "success 0 bookstore-worker" \
  "$(prop bookstore-worker@2 Result) $(prop bookstore-worker@2 NRestarts) $(cin stat -c %U "/proc/$(prop bookstore-worker@2 MainPID)" 2>&1 || true)"
if wait_until 15 healthy worker "http://127.0.0.1:$WORKER2_PORT"; then ok "GET :$WORKER2_PORT/health → 200"
else fail bookstore-worker@2 "bookstore-worker@2 /health on :$WORKER2_PORT" "$(show_http)"; fi
expect_eq bookstore-worker@2 "its consumer name: WORKER_NAME=%H-%i, here $HOST-2" "WORKER_NAME=$HOST-2" \
  "$(prop bookstore-worker@2 Environment | tr ' ' '\n' | grep '^WORKER_NAME=' || true)"
MAIN_CONSUMER=$HOST # WORKER_NAME=%H in bookstore-worker.service
check bookstore-worker "systemctl stop bookstore-worker (bookstore-worker@2 alone)" cin systemctl stop bookstore-worker
if create_order "$BOOK_ID"; then
  id=$(jq -r .id <<<"$HTTP_BODY")
  if wait_until 30 order_completed "$id" && wait_until 15 notified bookstore-worker@2 "$id"; then
    ok "order $id completed and notified by bookstore-worker@2"
  else
    fail bookstore-worker@2 "order $id completed and notified by bookstore-worker@2" "$(show_http)"
  fi
else
  fail bookstore-orders "POST /v1/orders → 201" "$(show_http)"
fi
check bookstore-worker "systemctl start bookstore-worker" cin systemctl start bookstore-worker
# Redis creates a consumer the first time it hands it an entry: both have by now
consumers() { # the consumer names of the group on bookstore:orders:events
  cin redis-cli --raw XINFO CONSUMERS bookstore:orders:events bookstore-workers |
    awk 'prev == "name" { print } { prev = $0 }' | sort | paste -sd ' '
}
if wait_until 10 eval '[[ " $(consumers) " == *" $HOST-2 "* && " $(consumers) " == *" $MAIN_CONSUMER "* ]]'; then
  ok "redis-cli XINFO CONSUMERS bookstore:orders:events bookstore-workers: $(consumers)"
else
  fail bookstore-worker@2 "the group has both consumers, $MAIN_CONSUMER and $HOST-2" "$(consumers)"
fi

# --- tokens: add, reload, revoke; the rate limit -----------------------------------------------

section "bearer tokens: one added and revoked by reload"
NEW_TOKEN=$(od -An -v -tx1 -N32 /dev/urandom | tr -d ' \n')
put_book() { http PUT "$BOOKS/v1/books/$BOOK_ID" -H 'Content-Type: application/json' -d "{\"description\": \"$1\"}"; }
if AUTH=$NEW_TOKEN unauthorized PUT "$BOOKS/v1/books/$BOOK_ID" -H 'Content-Type: application/json' \
  -d '{"description": "not yet"}'; then
  ok "PUT :8001/v1/books/$BOOK_ID with a token not in the file → 401"
else
  fail bookstore-books "a token not in the file → 401" "$(show_http)"
fi
pids_before="$(prop bookstore-books MainPID) $(prop bookstore-orders MainPID)"
# as docs/operations.md says: a name:sha256 line appended, then a reload
check bookstore-books "the new token's hash appended to $TOKENS/api-tokens; systemctl reload bookstore-books" \
  csh 'printf "systest:%s\n" "$(printf %s "$1" | sha256sum | cut -d " " -f 1)" >>"$2/api-tokens" &&
    systemctl reload bookstore-books' "$NEW_TOKEN" "$TOKENS"
if AUTH=$NEW_TOKEN put_book "added by a reload" && [[ $HTTP_STATUS == 200 ]] &&
  json_is '.description == "added by a reload"'; then
  ok "PUT :8001/v1/books/$BOOK_ID with the new token → 200"
else
  fail bookstore-books "the new token works on Books after systemctl reload bookstore-books" "$(show_http)"
fi
if AUTH=$NEW_TOKEN unauthorized GET "$ORDERS/v1/orders?limit=1"; then
  ok "Orders, not reloaded yet, still refuses it (401)"
else
  fail bookstore-orders "Orders refuses the new token before its own reload" "$(show_http)"
fi
check bookstore-orders "systemctl reload bookstore-orders" cin systemctl reload bookstore-orders
AUTH=$NEW_TOKEN http GET "$ORDERS/v1/orders?limit=1"
expect_eq bookstore-orders "GET :8082/v1/orders with the new token → 200" 200 "$HTTP_STATUS"
check bookstore-books "the journal says \"tokens reloaded: 3 tokens\" (books, orders)" \
  csh 'for u in bookstore-books bookstore-orders; do
    journalctl -u "$u" -o cat --no-pager | grep -q "tokens reloaded: 3 tokens" || { echo "$u"; exit 1; }; done'
check bookstore-books "revoked: its line deleted, systemctl reload bookstore-books bookstore-orders" \
  csh 'sed -i "/^systest:/d" "$1/api-tokens" && systemctl reload bookstore-books bookstore-orders' "$TOKENS"
if AUTH=$NEW_TOKEN unauthorized PUT "$BOOKS/v1/books/$BOOK_ID" -H 'Content-Type: application/json' \
  -d '{"description": "revoked"}' && AUTH=$NEW_TOKEN unauthorized GET "$ORDERS/v1/orders?limit=1"; then
  ok "the revoked token → 401 on Books and Orders"
else
  fail bookstore-books "the revoked token is refused" "$(show_http)"
fi
if put_book "the admin's token still works" && [[ $HTTP_STATUS == 200 ]]; then
  ok "the admin's token still works (PUT → 200)"
else
  fail bookstore-books "the admin's token works after the revocation" "$(show_http)"
fi
expect_eq "" "reloads, not restarts: the main pids of books and orders are unchanged" \
  "$pids_before" "$(prop bookstore-books MainPID) $(prop bookstore-orders MainPID)"
expect_eq "" "api-tokens still 0640 root:bookstore" "640 root:bookstore" \
  "$(cin stat -c '%a %U:%G' "$TOKENS/api-tokens" 2>&1)"

# a lost worker.token: the next configure makes one and appends its hash
check "" "worker.token deleted; dpkg-reconfigure bookstore-common" \
  csh 'rm "$1/worker.token" && DEBIAN_FRONTEND=noninteractive dpkg-reconfigure bookstore-common' "$TOKENS"
NEW_WORKER_TOKEN=$(cin cat "$TOKENS/worker.token" 2>/dev/null || true)
if [[ $NEW_WORKER_TOKEN =~ ^[0-9a-f]{64}$ && $NEW_WORKER_TOKEN != "$WORKER_TOKEN" ]]; then
  ok "a new worker.token, $(cin stat -c '%a %U:%G' "$TOKENS/worker.token")"
else
  fail "" "dpkg-reconfigure made a new worker.token" "$(cin ls -la "$TOKENS" 2>&1)"
fi
expect_eq "" "api-tokens: the admin's line kept, the new worker hash appended" \
  "admin:$(sha "$ADMIN_TOKEN")|worker:$(sha "$WORKER_TOKEN")|worker:$(sha "$NEW_WORKER_TOKEN")" \
  "$(cin grep -v -e '^#' -e '^$' "$TOKENS/api-tokens" 2>&1 | paste -sd '|')"
check bookstore-worker "systemctl reload bookstore-orders; systemctl restart bookstore-worker" \
  csh 'systemctl reload bookstore-orders && systemctl restart bookstore-worker bookstore-worker@2'
expect_eq bookstore-worker "bookstore-worker's credential is the new token" \
  "$NEW_WORKER_TOKEN" "$(cin cat /run/credentials/bookstore-worker.service/orders-api-token 2>&1 || true)"
out=$(CIN_TIMEOUT=45 cin bookstore-enqueue --book-id "$BOOK_ID" --quantity 1 --wait 30 2>&1) && rc=0 || rc=$?
if ((rc == 0)) && jq -e 'select(.outcome == "created")' <<<"$(tail -n 1 <<<"$out")" >/dev/null 2>&1; then
  ok "bookstore-enqueue: an order created with the new worker token"
else
  fail bookstore-worker "bookstore-enqueue creates an order with the new worker token" "exit $rc: $out"
fi

section "the packaged write rate limit (20 a second, burst 40)"
# burst N METHOD URL [CURL ARGS...]: N requests on one connection, as fast as
# curl sends them; prints how many got each status and Retry-After, e.g.
# "40×404: 60×429:1"
burst() {
  local n=$1 method=$2 url=$3
  shift 3
  csh 'n=$1 method=$2 url=$3 auth=$4; shift 4
    for _ in $(seq "$n"); do set -- "$@" -o /dev/null "$url"; done
    curl -s -w "%{http_code}:%header{retry-after}\n" -X "$method" -H "Authorization: Bearer $auth" "$@"' \
    "$n" "$method" "$url" "$AUTH" "$@" | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $1, $2; sep = " " }'
}
codes=$(burst 100 DELETE "$BOOKS/v1/books/999999999")
# 40 at once, and 20 a second more while curl sends them; the rest refused
if [[ $codes =~ ^([0-9]+)×404:\ ([0-9]+)×429:[1-9][0-9]*$ ]] && ((BASH_REMATCH[1] >= 40 && BASH_REMATCH[2] >= 20)); then
  ok "100 DELETEs from 127.0.0.1 at once on Books, status:Retry-After: $codes"
else
  fail bookstore-books "a burst of 100 writes on Books: 429 with Retry-After after about 40" "$codes"
fi
sleep 3 # the bucket fills again (40 at 20 a second)
http DELETE "$BOOKS/v1/books/999999999"
expect_eq bookstore-books "3 s later the bucket has refilled: DELETE → 404" 404 "$HTTP_STATUS"
codes=$(burst 100 POST "$ORDERS/v1/orders" -H 'Content-Type: application/json' -d '{}')
expect_eq bookstore-orders "100 POSTs from 127.0.0.1 at once on Orders: never limited (RATE_LIMIT_EXEMPT, its local worker)" \
  "100×400:" "$codes"

# --- the journal -------------------------------------------------------------------------------

section "journal"
fields='REQUEST_ID HTTP_METHOD HTTP_PATH HTTP_STATUS DURATION_MS'
access_entry() { # the orders access entry of the POST, as JSON
  cin journalctl -u bookstore-orders -o json --no-pager "REQUEST_ID=$REQUEST_ID" |
    jq -ce 'select(.HTTP_METHOD == "POST" and .HTTP_PATH == "/v1/orders")' | head -n 1 | grep .
}
if wait_until 10 access_entry; then
  entry=$(access_entry)
  if jq -e --arg f "$fields" '. as $e | ($f | split(" ") | all($e[.] != null)) and .HTTP_STATUS == "201"' \
    <<<"$entry" >/dev/null; then
    ok "journalctl -u bookstore-orders -o json: $(jq -c '{REQUEST_ID, HTTP_METHOD, HTTP_PATH, HTTP_STATUS, DURATION_MS, PRIORITY}' <<<"$entry")"
  else
    fail bookstore-orders "the access entry has $fields" "$entry"
  fi
else
  fail bookstore-orders "journalctl -u bookstore-orders -o json has the POST's access entry" \
    "$(cin journalctl -u bookstore-orders -o json -n 5 --no-pager 2>&1)"
fi
both_units() {
  [[ $(cin journalctl "REQUEST_ID=$REQUEST_ID" -o json --no-pager | jq -r '._SYSTEMD_UNIT' | sort -u | paste -sd ' ') \
    == "bookstore-books.service bookstore-orders.service" ]]
}
if wait_until 10 both_units; then
  ok "journalctl REQUEST_ID=$REQUEST_ID finds both units ($(cin journalctl "REQUEST_ID=$REQUEST_ID" -o json --no-pager |
    jq -r '"\(._SYSTEMD_UNIT | sub(".service$"; "")) \(.HTTP_METHOD) \(.HTTP_PATH) \(.HTTP_STATUS)"' | paste -sd ';' | sed 's/;/; /g'))"
else
  fail "" "journalctl REQUEST_ID=$REQUEST_ID finds both units" \
    "$(cin journalctl "REQUEST_ID=$REQUEST_ID" -o json --no-pager 2>&1 | jq -c '{_SYSTEMD_UNIT, MESSAGE}' 2>&1)"
fi

section "one trace through the three units (journalctl TRACE_ID=)"
TRACE_ID=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
http POST "$ORDERS/v1/orders" -H 'Content-Type: application/json' \
  -H "traceparent: 00-$TRACE_ID-00f067aa0ba902b7-01" -d "{\"book_id\": $BOOK_ID, \"quantity\": 1}"
[[ $HTTP_STATUS == 201 ]] || fail bookstore-orders "POST :8082/v1/orders with a traceparent → 201" "$(show_http)"
TRACED_ORDER=$(jq -r '.id // empty' <<<"$HTTP_BODY" 2>/dev/null || true)
trace_units() { # either worker instance may take the job
  cin journalctl "TRACE_ID=$TRACE_ID" -o json --no-pager | jq -r '._SYSTEMD_UNIT' |
    sed 's/^bookstore-worker@[0-9]*\.service$/bookstore-worker.service/' | sort -u | paste -sd ' '
}
three_units() {
  [[ $(trace_units) == "bookstore-books.service bookstore-orders.service bookstore-worker.service" ]]
}
if wait_until 30 three_units; then
  ok "journalctl TRACE_ID=$TRACE_ID: $(cin journalctl "TRACE_ID=$TRACE_ID" -o json --no-pager |
    jq -r '._SYSTEMD_UNIT | sub(".service$"; "")' | uniq | paste -sd ' ' | sed 's/ / → /g')"
else
  fail "" "journalctl TRACE_ID= finds the order in books, orders and the worker" \
    "units: $(trace_units)"
fi

section "bookstorectl order: the order, its streams and its journal records"
# the journal part needs the real journald, so only this test can prove it
order_timeline() {
  out=$(CIN_TIMEOUT=30 cin bookstorectl order "${TRACED_ORDER:-0}" --json 2>&1) &&
    jq -e --arg t "$TRACE_ID" '.trace_id == $t and .order.status == "completed" and .journal.available
      and ([.journal.entries[].unit | sub("@[0-9]+"; "")] | unique
           == ["bookstore-books.service", "bookstore-orders.service", "bookstore-worker.service"])
      and any(.timeline[]; .status == "completed")' <<<"$out" >/dev/null 2>&1
}
if wait_until 30 order_timeline; then
  ok "bookstorectl order $TRACED_ORDER --json: completed, $(jq '.timeline | length' <<<"$out") stream entries, $(jq '.journal.entries | length' <<<"$out") journal records of trace $TRACE_ID"
else
  fail "" "bookstorectl order shows the order, its timeline and its journal records" \
    "$(head -c 3000 <<<"$out")"
fi

section "bookstorectl status on the packaged system"
out=$(CIN_TIMEOUT=30 cin bookstorectl status --json 2>&1) && rc=0 || rc=$?
if [[ $rc == 0 ]] && jq -e '.healthy and .units.available and (.units.units | length >= 3)
    and all(.units.units[]; .active_state == "active")' <<<"$out" >/dev/null 2>&1; then
  ok "bookstorectl status --json: exit 0, $(jq -r '.units.units | map("\(.name) \(.active_state)") | join(", ")' <<<"$out")"
else
  fail "" "bookstorectl status --json exits 0 with JSON" "exit $rc: $(head -c 2000 <<<"$out")"
fi

# --- monitoring ---------------------------------------------------------------------------------

section "monitoring: the packaged Prometheus configuration against the packaged services"
# The host's Prometheus runs in the container's network namespace with the
# installed /usr/share/bookstore-monitoring/prometheus.yml as it is: its
# targets (localhost:8001, 8082, 9100, 9090) are the container's services, and
# its rule_files (rules/*.yml, relative to it) the installed rules.
MON=/proc/$LEADER/root/usr/share/bookstore-monitoring
check "" "promtool check config /usr/share/bookstore-monitoring/prometheus.yml (and its rules)" \
  promtool check config "$MON/prometheus.yml"
check "" "the dashboards are JSON and their provisioning files are installed" bash -c '
  for f in "$1"/dashboards/*.json; do jq -e ".uid and .panels" "$f" >/dev/null || exit 1; done
  ls "$1"/dashboards/*.json "$1"/dashboards/provisioning/datasources/*.yml "$1"/dashboards/provisioning/dashboards/*.yml' \
  bash "$MON"
check "" "the runbooks are in /usr/share/doc/bookstore-monitoring" \
  csh 'ls /usr/share/doc/bookstore-monitoring/runbooks.md*'
mkdir -p "$WORK/prometheus"
setsid nsenter -t "$LEADER" -n prometheus --config.file="$MON/prometheus.yml" \
  --storage.tsdb.path="$WORK/prometheus" --web.listen-address=127.0.0.1:9090 --log.level=warn \
  >"$LOGS/prometheus.log" 2>&1 </dev/null &
PROM_PID=$!
promql() { # promql EXPR: the result vector of an instant query, as JSON
  cin curl -sS --max-time 10 --get --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query |
    jq -ce '.data.result'
}
all_up() {
  [[ $(promql 'up' | jq -r '[.[] | select(.value[1] == "1") | .metric.job] | sort | join(" ")') \
    == "books orders prometheus worker" ]]
}
# the first scrape of each target comes within one scrape_interval (15 s)
if wait_until 60 all_up; then
  ok "up == 1 for the jobs books, orders, worker and prometheus, with the shipped scrape_configs"
else
  fail "" "up == 1 for every job of the shipped prometheus.yml" \
    "$(promql up 2>&1; tail -n 20 "$LOGS/prometheus.log")"
fi
# the units hide /proc/stat (ProcSubset=pid): the start time must still be a
# Unix time, not seconds since boot
expect_eq "" "process_start_time_seconds is within a day of now for books, orders and worker" \
  "books orders worker" \
  "$(promql 'abs(time() - process_start_time_seconds{job=~"books|orders|worker"}) < 86400' |
    jq -r '[.[].metric.job] | sort | join(" ")')"
n_rules=$(grep -c '^ *- alert:' "$MON/rules/"*.yml | awk -F: '{n += $NF} END {print n}')
rules_ok() {
  [[ $(cin curl -sS --max-time 10 http://127.0.0.1:9090/api/v1/rules |
    jq '[.data.groups[].rules[] | select(.type == "alerting" and .health == "ok")] | length') == "$n_rules" ]]
}
if wait_until 60 rules_ok; then
  ok "all $n_rules alert rules loaded from /usr/share/bookstore-monitoring/rules and evaluated (health ok)"
else
  fail "" "all $n_rules alert rules evaluate" \
    "$(cin curl -sS http://127.0.0.1:9090/api/v1/rules | jq -c '.data.groups[].rules[] | {name, health, lastError}' 2>&1)"
fi
expect_eq "" "no alert firing or pending on the healthy system" "[]" \
  "$(cin curl -sS --max-time 10 http://127.0.0.1:9090/api/v1/alerts | jq -c '[.data.alerts[].labels.alertname]')"
stop_prometheus

# --- stop and start --------------------------------------------------------------------------

section "systemctl stop/start bookstore.target"
# the target's own stop job ends first (it is ordered after the services it
# wants), so systemctl returns while the services still stop: wait for them too
t=$(date +%s%N)
if CIN_TIMEOUT=60 cin systemctl stop bookstore.target &&
  CIN_TIMEOUT=15 csh 'until [ "$(systemctl show -P ActiveState "$@" | grep -v "^$" | sort -u)" = inactive ]; do sleep 0.02; done' \
    "${SERVICES[@]}" bookstore-worker@2; then
  rc=0
else
  rc=$?
fi
stop_ms=$((($(date +%s%N) - t) / 1000000))
if ((rc == 0 && stop_ms < 10000)); then
  ok "systemctl stop bookstore.target: every service inactive after ${stop_ms} ms"
else
  fail "" "systemctl stop bookstore.target stops every service within 10 s" "exit $rc after ${stop_ms} ms"
fi
for svc in "${SERVICES[@]}" bookstore-worker@2; do
  expect_eq "$svc" "$svc stopped cleanly (ActiveState Result ExecMainCode ExecMainStatus)" \
    "inactive success 1 0" \
    "$(prop "$svc" ActiveState) $(prop "$svc" Result) $(prop "$svc" ExecMainCode) $(prop "$svc" ExecMainStatus)"
done
t=$(date +%s%N)
check "" "systemctl start bookstore.target" cin systemctl start bookstore.target
start_ms=$((($(date +%s%N) - t) / 1000000))
for svc in "${SERVICES[@]}" bookstore-worker@2; do
  expect_eq "$svc" "$svc active again (start took ${start_ms} ms)" active "$(cin systemctl is-active "$svc" || true)"
done
if wait_until 15 healthy orders && healthy books && wait_until 15 healthy worker &&
  wait_until 15 healthy worker "http://127.0.0.1:$WORKER2_PORT"; then
  ok "all healthy again"
else
  fail bookstore-orders "all healthy after start" "$(show_http)"
fi

# --- crashes ---------------------------------------------------------------------------------

section "SIGKILL: systemd restarts bookstore-orders"
before=$(prop bookstore-orders NRestarts) pid=$(prop bookstore-orders MainPID)
check bookstore-orders "systemctl kill -s KILL bookstore-orders (pid $pid)" \
  cin systemctl kill -s KILL bookstore-orders
restarted() { # restarted UNIT NRESTARTS_BEFORE OLD_PID
  local n
  n=$(prop "$1" NRestarts)
  [[ $n =~ ^[0-9]+$ ]] && ((n > $2)) && cin systemctl is-active --quiet "$1" && [[ $(prop "$1" MainPID) != "$3" ]]
}
t=$SECONDS
if wait_until 20 restarted bookstore-orders "$before" "$pid"; then
  ok "restarted in ≤ $((SECONDS - t)) s: NRestarts $before → $(prop bookstore-orders NRestarts), pid $(prop bookstore-orders MainPID)"
else
  fail bookstore-orders "bookstore-orders restarted after SIGKILL" \
    "NRestarts $(prop bookstore-orders NRestarts), $(cin systemctl is-active bookstore-orders || true)"
fi
if wait_until 15 create_order "$BOOK_ID"; then ok "serving again: POST /v1/orders → 201"
else fail bookstore-orders "serving after the restart" "$(show_http)"; fi
cin systemctl reset-failed bookstore-orders || true

section "SIGKILL: systemd restarts bookstore-worker"
before=$(prop bookstore-worker NRestarts) pid=$(prop bookstore-worker MainPID)
check bookstore-worker "systemctl kill -s KILL bookstore-worker (pid $pid)" \
  cin systemctl kill -s KILL bookstore-worker
t=$SECONDS
if wait_until 20 restarted bookstore-worker "$before" "$pid"; then
  ok "restarted in ≤ $((SECONDS - t)) s: NRestarts $before → $(prop bookstore-worker NRestarts), pid $(prop bookstore-worker MainPID)"
else
  fail bookstore-worker "bookstore-worker restarted after SIGKILL" \
    "NRestarts $(prop bookstore-worker NRestarts), $(cin systemctl is-active bookstore-worker || true)"
fi
if wait_until 15 healthy worker; then ok "bookstore-worker healthy again"
else fail bookstore-worker "bookstore-worker healthy after the restart" "$(show_http)"; fi
cin systemctl reset-failed bookstore-worker || true

section "SIGSTOP: the watchdog restarts bookstore-books"
before=$(prop bookstore-books NRestarts) pid=$(prop bookstore-books MainPID)
since=$(date +%s)
check bookstore-books "systemctl kill -s STOP bookstore-books (pid $pid, WatchdogSec=$(prop bookstore-books WatchdogUSec))" \
  cin systemctl kill -s STOP bookstore-books
t=$SECONDS
if wait_until 40 restarted bookstore-books "$before" "$pid"; then
  ok "killed and restarted after $((SECONDS - t)) s: NRestarts $before → $(prop bookstore-books NRestarts)"
else
  fail bookstore-books "watchdog restart within 40 s" \
    "NRestarts $(prop bookstore-books NRestarts), $(cin systemctl is-active bookstore-books || true)"
fi
wd=$(cin journalctl -u bookstore-books --since "@$since" --no-pager -o cat | grep -i -E 'watchdog' || true)
if grep -q -i -E "watchdog timeout|result 'watchdog'" <<<"$wd"; then
  ok "the journal says watchdog: $(grep -i -m 1 -E "watchdog timeout|result 'watchdog'" <<<"$wd")"
else
  fail bookstore-books "the journal names the watchdog" "$wd"
fi
if wait_until 30 healthy books && wait_until 30 healthy orders; then ok "books and orders healthy again"
else fail bookstore-books "healthy after the watchdog restart" "$(show_http)"; fi
cin systemctl reset-failed bookstore-books || true

# --- PostgreSQL restarted under the services ----------------------------------------------------

section "systemctl restart postgresql under load"
books_restarts=$(prop bookstore-books NRestarts) orders_restarts=$(prop bookstore-orders NRestarts)
t=$SECONDS
check postgresql "systemctl restart postgresql" cin systemctl restart postgresql
if wait_until 30 create_order "$BOOK_ID"; then
  ok "an order is created again $((SECONDS - t)) s after the restart began"
else
  fail bookstore-orders "orders can be created within 30 s" "$(show_http)"
fi
if wait_until 15 healthy books && wait_until 15 healthy orders; then ok "both /health 200"
else fail bookstore-orders "both healthy after the PostgreSQL restart" "$(show_http)"; fi
expect_eq "" "the services reconnected without being restarted (NRestarts books orders)" \
  "$books_restarts $orders_restarts" "$(prop bookstore-books NRestarts) $(prop bookstore-orders NRestarts)"

# --- Redis restarted under the services ---------------------------------------------------------

section "systemctl restart redis-server under the services"
restarts() { for u in bookstore-orders bookstore-worker bookstore-worker@2; do prop "$u" NRestarts; done | paste -sd ' '; }
restarts_before=$(restarts)
t=$SECONDS
check redis-server "systemctl restart redis-server" cin systemctl restart redis-server
if wait_until 30 create_order "$BOOK_ID"; then
  id=$(jq -r .id <<<"$HTTP_BODY")
  if wait_until 60 order_completed "$id"; then
    ok "an order created after the restart (order $id) reached \"completed\" $((SECONDS - t)) s after the restart began"
  else
    fail bookstore-worker "order $id reaches \"completed\" after the Redis restart" "$(show_http)"
  fi
else
  fail bookstore-orders "orders can be created after the Redis restart" "$(show_http)"
fi
if wait_until 30 healthy orders && wait_until 30 healthy worker &&
  wait_until 30 healthy worker "http://127.0.0.1:$WORKER2_PORT"; then
  ok "orders and both workers report Redis healthy"
else
  fail bookstore-worker "Redis healthy again everywhere" "$(show_http)"
fi
expect_eq "" "they reconnected without being restarted (NRestarts orders worker worker@2)" \
  "$restarts_before" "$(restarts)"

# --- socket activation --------------------------------------------------------------------------

section "socket activation"
# socket_activates NAME URL PATH: with the service stopped and NAME.socket enabled
# and started, a GET of PATH on the port starts the service, and that very first
# request is answered 200 (queries wait for the first schema check, not 503)
socket_activates() {
  local svc=$1 url=$2 path=$3
  check "$svc" "systemctl stop $svc.service; systemctl enable --now $svc.socket" \
    csh 'systemctl stop "$1.service" && systemctl enable --now "$1.socket"' "$svc"
  expect_eq "$svc" "$svc.socket listening, $svc.service stopped" "active inactive" \
    "$(cin systemctl is-active "$svc.socket" || true) $(cin systemctl is-active "$svc.service" || true)"
  http GET "$url$path"
  if [[ $HTTP_STATUS == 200 ]]; then
    ok "a GET $path on :${url##*:} started $svc.service and was answered 200"
  else
    fail "$svc" "a GET $path on :${url##*:} starts $svc.service and is answered 200" "$(show_http)"
  fi
  expect_eq "$svc" "$svc.service active, triggered by $svc.socket" "active $svc.socket" \
    "$(cin systemctl is-active "$svc.service" || true) $(prop "$svc.service" TriggeredBy)"
}
socket_activates bookstore-books "$BOOKS" /v1/books
if wait_until 15 healthy books; then ok "bookstore-books healthy"
else fail bookstore-books "bookstore-books healthy when socket-activated" "$(show_http)"; fi
check bookstore-books "back to the default: bookstore-books.socket disabled and stopped, service restarted" \
  csh 'systemctl disable --now bookstore-books.socket && systemctl restart bookstore-books.service'
expect_eq bookstore-books "bookstore-books.service active, bookstore-books.socket inactive" "active inactive" \
  "$(cin systemctl is-active bookstore-books.service || true) $(cin systemctl is-active bookstore-books.socket || true)"
# bookstore-orders stays socket-activated through the upgrade and the remove below
socket_activates bookstore-orders "$ORDERS" /v1/orders
if wait_until 15 healthy books && wait_until 15 healthy orders; then ok "both healthy"
else fail bookstore-orders "both healthy" "$(show_http)"; fi

# --- upgrades ------------------------------------------------------------------------------------

# upgrade LOG APT-ARGS...: apt-get install APT-ARGS over the running packages, then
# check that data, configuration, the admin's choices (an enabled socket, a
# worker instance) and the services all come through, restarted on the new files
UPGRADE_UNITS=("${SERVICES[@]}" bookstore-worker@2)
main_pids() { for u in "${UPGRADE_UNITS[@]}"; do prop "$u" MainPID; done | paste -sd ' '; }
tokens_state() { # the tokens files' checksums and permissions, one line
  csh 'cd "$1" && sha256sum admin.token worker.token api-tokens && stat -c "%n %a %U:%G" . *' "$TOKENS" 2>&1 |
    paste -sd '|'
}
upgrade() {
  local log=$1 marker orders_before pids_before pids_after i svc before after
  shift
  http GET "$ORDERS/v1/orders?limit=1"
  orders_before=$(header X-Total-Count)
  marker="# bookstore system test marker $REQUEST_ID $log"
  check "" "a marker added to orders.env, worker.env and worker-2.env" \
    csh 'for f in orders worker worker-2; do echo "$1" >>"/etc/bookstore/$f.env" || exit; done' "$marker"
  pids_before=$(main_pids)
  tokens_before=$(tokens_state)
  if CIN_TIMEOUT=300 cin DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >"$LOGS/$log" 2>&1; then
    ok "apt-get install -y $(sed "s|$IN_DEBS/||g; s|$IN_OLD_DEBS/||g" <<<"$*")"
  else
    fail "" "apt-get install $*" "$(tail -n 40 "$LOGS/$log")"
  fi
  if grep -q 'database not set up' "$LOGS/$log"; then
    fail "" "postinst set up the databases again" "$(grep -B 5 'database not set up' "$LOGS/$log")"
  else
    ok "postinst re-ran bookstore-setup-database without complaint"
  fi
  expect_eq "" "installed: ${PACKAGES[*]} at $VERSION" \
    "$(printf "ii %s $VERSION\n" "${PACKAGES[@]}" | sort | paste -sd '|')" \
    "$(cin dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' "${PACKAGES[@]}" | sed 's/ *$//; s/  */ /g' | sort | paste -sd '|')"
  check "" "configuration kept: the marker is still in orders.env, worker.env and worker-2.env" \
    csh 'for f in orders worker worker-2; do grep -qxF "$1" "/etc/bookstore/$f.env" || { echo "not in $f.env"; exit 1; }; done' "$marker"
  expect_eq "" "permissions kept: /etc/bookstore 0750, orders.env and worker.env 0640, group bookstore" \
    "750 root:bookstore|640 root:bookstore|640 root:bookstore" \
    "$(cin stat -c '%a %U:%G' /etc/bookstore /etc/bookstore/orders.env /etc/bookstore/worker.env | paste -sd '|')"
  expect_eq "" "tokens kept: admin.token, worker.token and api-tokens unchanged, with their permissions" \
    "$tokens_before" "$(tokens_state)"
  if grep -E '^bookstore: .*token' "$LOGS/$log"; then
    fail "" "postinst made no token" "$(grep -E '^bookstore: .*token' "$LOGS/$log")"
  fi
  for svc in "${UPGRADE_UNITS[@]}"; do
    wait_until 30 cin systemctl is-active --quiet "$svc" || true
    expect_eq "$svc" "$svc active and enabled" "active enabled" \
      "$(cin systemctl is-active "$svc" || true) $(cin systemctl is-enabled "$svc" || true)"
  done
  expect_eq bookstore-orders "the admin's choices kept: books.socket disabled, orders.socket enabled and listening" \
    "disabled enabled active" \
    "$(cin systemctl is-enabled bookstore-books.socket || true) $(cin systemctl is-enabled bookstore-orders.socket || true) $(cin systemctl is-active bookstore-orders.socket || true)"
  pids_after=$(main_pids)
  read -r -a before <<<"$pids_before"
  read -r -a after <<<"$pids_after"
  for i in "${!UPGRADE_UNITS[@]}"; do
    if [[ ${before[$i]:-0} != "${after[$i]:-0}" && ${after[$i]:-0} != 0 ]]; then
      ok "${UPGRADE_UNITS[$i]} restarted on the new files (main pid ${before[$i]:-?} → ${after[$i]})"
    else
      fail "${UPGRADE_UNITS[$i]}" "${UPGRADE_UNITS[$i]} restarted by the upgrade" "main pid ${before[$i]:-?} → ${after[$i]:-?}"
    fi
  done
  check bookstore-orders "bookstore-orders restarted onto the socket's fd (socket-activated)" \
    csh 'journalctl -u bookstore-orders "_PID=$1" -o cat | grep -F "(socket-activated)"' "${after[1]:-0}"
  http GET "$ORDERS/v1/orders/$ORDER_ID"
  if [[ $HTTP_STATUS == 200 ]] && json_is ".id == $ORDER_ID and .book_title == \"1984\" and .total_price == 31.98 and .status == \"completed\""; then
    ok "data kept: order $ORDER_ID is still there, completed"
  else
    fail bookstore-orders "order $ORDER_ID still there after the upgrade" "$(show_http)"
  fi
  http GET "$ORDERS/v1/orders?limit=1"
  expect_eq bookstore-orders "as many orders as before ($orders_before)" "$orders_before" "$(header X-Total-Count)"
  if AUTH='' unauthorized POST "$ORDERS/v1/orders" -H 'Content-Type: application/json' \
    -d "{\"book_id\": $BOOK_ID, \"quantity\": 1}"; then
    ok "still on: POST /v1/orders without a token → 401"
  else
    fail bookstore-orders "tokens still required after the upgrade" "$(show_http)"
  fi
  if wait_until 15 healthy books && wait_until 15 create_order "$BOOK_ID"; then
    local id
    id=$(jq -r .id <<<"$HTTP_BODY")
    if wait_until 30 order_completed "$id"; then ok "serving: a new order $id → 201, then \"completed\""
    else fail bookstore-worker "a new order reaches \"completed\" after the upgrade" "$(show_http)"; fi
  else
    fail bookstore-orders "serving after the upgrade" "$(show_http)"
  fi
}

section "upgrade from the older build ($OLD_VERSION → $VERSION)"
upgrade apt-upgrade.log "${in_debs[@]}"
n=$(grep -c "over ($OLD_VERSION)" "$LOGS/apt-upgrade.log" || true)
expect_eq "" "dpkg unpacked each package over its $OLD_VERSION" "${#PACKAGES[@]}" "$n"

section "the same version again (--reinstall)"
upgrade apt-reinstall.log --reinstall "${in_debs[@]}"

# --- remove and purge -------------------------------------------------------------------------------

section "apt-get remove, apt-get purge"
if CIN_TIMEOUT=300 cin DEBIAN_FRONTEND=noninteractive apt-get remove -y bookstore-orders \
  >"$LOGS/apt-remove.log" 2>&1; then
  ok "apt-get remove -y bookstore-orders"
else
  fail "" "apt-get remove bookstore-orders" "$(tail -n 30 "$LOGS/apt-remove.log")"
fi
expect_eq bookstore-orders "bookstore-orders.service and the enabled bookstore-orders.socket are stopped" \
  "inactive inactive" \
  "$(cin systemctl is-active bookstore-orders.service || true) $(cin systemctl is-active bookstore-orders.socket || true)"
http GET "$ORDERS/health"
expect_eq "" "nothing answers on :8082" 000 "$HTTP_STATUS"
expect_eq bookstore-books "bookstore-books still active" active "$(cin systemctl is-active bookstore-books || true)"
check "" "orders.env kept after remove (a conffile)" cin test -f /etc/bookstore/orders.env

expect_eq bookstore-worker "bookstore-worker and bookstore-worker@2 still active" "active active" \
  "$(cin systemctl is-active bookstore-worker || true) $(cin systemctl is-active bookstore-worker@2 || true)"

# what purge must also take away: bookstore-setup-redis's passwords and drop-ins
REDIS_FILES=(/etc/bookstore/redis/{orders,worker,enqueue,ctl}.password
  /etc/systemd/system/bookstore-{orders,worker,worker@}.service.d/redis-user.conf)
check "" "bookstore-setup-redis writes ${#REDIS_FILES[@]} passwords and drop-ins" \
  csh 'bookstore-setup-redis && ls -l "$@"' "${REDIS_FILES[@]}"

if CIN_TIMEOUT=300 cin DEBIAN_FRONTEND=noninteractive apt-get purge -y "${PACKAGES[@]}" \
  >"$LOGS/apt-purge.log" 2>&1; then
  ok "apt-get purge -y ${PACKAGES[*]}"
  expect_eq bookstore-worker "bookstore-worker and bookstore-worker@2 stopped" "inactive inactive" \
    "$(cin systemctl is-active bookstore-worker || true) $(cin systemctl is-active bookstore-worker@2 || true)"
else
  fail "" "apt-get purge" "$(tail -n 30 "$LOGS/apt-purge.log")"
fi
expect_eq "" "no bookstore package left in dpkg's database" "" \
  "$(cin dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'bookstore*' 2>/dev/null | grep -v '^un' || true)"
check "" "the tokens are gone ($TOKENS)" csh '! test -e "$1" || { ls -la "$1"; false; }' "$TOKENS"
check "" "bookstore-setup-redis's passwords and drop-ins are gone" \
  csh 'for f; do ! test -e "$f" || { ls -la "$f"; exit 1; }; done' "${REDIS_FILES[@]}"
check "" "/etc/bookstore is gone (with worker-2.env)" csh '! test -e /etc/bookstore || { ls -la /etc/bookstore; false; }'
expect_eq "" "systemctl list-units 'bookstore*': nothing loaded and active" "" \
  "$(cin systemctl list-units --all --no-legend --plain 'bookstore*' | grep -v -E ' (not-found|inactive|dead) ' || true)"
expect_eq "" "no bookstore unit files, symlinks or deb-systemd-helper state left" "" \
  "$(cin find /etc/systemd /lib/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-user-helper-enabled -name '*bookstore*' 2>/dev/null || true)"
for url in "$BOOKS" "$WORKER" "http://127.0.0.1:$WORKER2_PORT"; do
  http GET "$url/health"
  expect_eq "" "nothing answers on :${url##*:}" 000 "$HTTP_STATUS"
done
if CIN_TIMEOUT=120 cin DEBIAN_FRONTEND=noninteractive apt-get install -y "${in_debs[0]}" \
  >"$LOGS/apt-common.log" 2>&1 &&
  CIN_TIMEOUT=120 cin DEBIAN_FRONTEND=noninteractive apt-get purge -y bookstore-common \
    >>"$LOGS/apt-common.log" 2>&1 && ! cin test -e /etc/bookstore; then
  ok "bookstore-common alone installs and purges cleanly"
else
  fail "" "bookstore-common alone installs and purges cleanly" "$(tail -n 20 "$LOGS/apt-common.log")"
fi
expect_eq "" "the databases stay (psql -l lists books_db and orders_db)" "books_db orders_db" \
  "$(as_pg -d postgres -l 2>&1 | cut -d '|' -f 1 | grep -E '^(books|orders)_db$' | sort | paste -sd ' ')"
info "kept on purpose: the system users (Debian does not remove them) and the databases" \
  "(bookstore-setup-database --drop removes those)"

section "poweroff"
t=$SECONDS
poweroff_container
ok "container powered off in $((SECONDS - t)) s"
