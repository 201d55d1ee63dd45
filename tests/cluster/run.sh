#!/bin/bash
# tests/cluster/run.sh: the packages on several hosts (issue 13). Five Debian 12
# containers booted with systemd-nspawn from one cached root (--volatile=overlay,
# the root is never changed) on a bridge inside a network namespace of the
# test's own (10.77.0.0/24; nothing outside is reachable):
#
#   lb    10.77.0.10  HAProxy (data/haproxy/bookstore-haproxy.cfg), a Sentinel
#   app1  10.77.0.11  bookstore-books, -orders, -worker from our .debs
#   app2  10.77.0.12  the same, with app1's tokens
#   db1   10.77.0.21  PostgreSQL primary, Redis master, a Sentinel
#   db2   10.77.0.22  PostgreSQL streaming replica, Redis replica, a Sentinel
#
# Redis runs with the default user off: an administrator, replication and
# Sentinel users, and bookstore-setup-redis's users for Orders and the worker
# on both servers. docs/cluster.md, "Several hosts: what goes where",
# describes it all.
#
# Under steady load through HAProxy from the test's namespace (tests/cluster/
# load.py: GETs, and orders with an Idempotency-Key retried on errors and
# timeouts with the same key), it runs the scenarios and after each compares the
# client's acknowledged orders with the database: 0 lost, 0 duplicated, every
# one completed or failed. It prints failed requests and recovery time per
# scenario. Every check prints "ok" or "FAIL"; the exit status is non-zero when
# any failed.
#
#   tests/cluster/run.sh
#
# Environment:
#   DEBS_DIR                use the .debs in this directory instead of building them
#   BOOKSTORE_CLUSTER_ROOT  the prepared root (default /var/cache/bookstore/cluster-root-bookworm)
#   BOOKSTORE_DEBIAN_MIRROR, BOOKSTORE_SECURITY_MIRROR
#                           override the mirrors found in the host's apt sources
#   KEEP_LOGS=1             keep the log directory (always kept when a check failed)
#   HOLD=1                  at the end, keep the containers up until the file it names is removed
#
# Needs root (debootstrap, ip netns, systemd-nspawn, nsenter). See
# /work/shared/recipes/booted-container.md and tests/system/run.sh.
#
# Scripts run inside the containers are single-quoted on purpose:
# shellcheck disable=SC2016
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT_DIR/tests/cluster
CACHE=${BOOKSTORE_CLUSTER_ROOT:-/var/cache/bookstore/cluster-root-bookworm}
SUITE=bookworm
DEBOOTSTRAP_INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd
ROOT_PACKAGES=(postgresql redis-server redis-sentinel haproxy curl jq ca-certificates)
ROOT_RECIPE=1 # bump when the way the root is prepared changes
IN_DEBS=/srv/bookstore-debs
PACKAGES=(bookstore-common bookstore-books bookstore-orders bookstore-worker)
NET=10.77.0
declare -A ADDR=([lb]=$NET.10 [app1]=$NET.11 [app2]=$NET.12 [db1]=$NET.21 [db2]=$NET.22)
HOSTS=(db1 db2 lb app1 app2)
CLIENT=$NET.1 # the load generator, in the test's namespace on the bridge
LB=http://${ADDR[lb]}
PG_MAJOR=15

export LANG=C.UTF-8 LC_ALL=C.UTF-8

# --- output ------------------------------------------------------------------

T0=$SECONDS
FAILS=()
TABLE=() # scenario rows for the summary
section_name=''

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }
die() {
  printf '\nFATAL: %s\n' "$*"
  FAILS+=("${section_name:-setup}: FATAL: $*")
  exit 1
}
section() {
  section_name=$1
  printf '\n'
  say "=== $section_name"
}
ok() { printf '  ok    %s\n' "$*"; }
info() { printf '  ..    %s\n' "$*"; }
indent() { sed 's/^/        | /'; }
fail() { # fail MESSAGE [DETAILS]
  printf '  FAIL  %s\n' "$1"
  [[ -z ${2:-} ]] || head -c 4000 <<<"$2" | indent
  FAILS+=("$section_name: $1")
}
expect_eq() { # expect_eq DESCRIPTION EXPECTED ACTUAL
  if [[ $3 == "$2" ]]; then ok "$1"; else fail "$1" "expected: $2"$'\n'"got:      $3"; fi
}
check() { # check DESCRIPTION COMMAND...
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$desc"; else fail "$desc" "$out"; fi
}

# --- the containers ----------------------------------------------------------

NETNS=bookstore-cluster-$$
NETNS_MADE='' BUILDING_ROOT='' WORK='' LOGS='' BOUNDED_PID='' LOAD_PID=''
declare -A NSPAWN_PID=() LEADER=()

bounded() { # bounded SECONDS COMMAND...
  local secs=$1
  shift
  timeout --kill-after=10 "$secs" "$@" &
  BOUNDED_PID=$!
  wait "$BOUNDED_PID"
}

# on HOST COMMAND...: run a command in a booted container, bounded by
# CIN_TIMEOUT seconds (default 60)
on() {
  local host=$1
  shift
  bounded "${CIN_TIMEOUT:-60}" \
    nsenter -t "${LEADER[$host]}" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@" </dev/null
}
# sh_on HOST SCRIPT [ARGS...]: a bash script in a container
sh_on() {
  local host=$1 script=$2
  shift 2
  on "$host" bash -c "$script" bash "$@"
}
# in_ns COMMAND...: a host command in the test's network namespace
in_ns() { nsenter --net="/run/netns/$NETNS" "$@"; }

wait_until() { # wait_until SECONDS COMMAND...: poll every 0.5 s
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

poweroff_all() {
  local h deadline
  for h in "${!NSPAWN_PID[@]}"; do
    [[ -z ${LEADER[$h]:-} ]] || CIN_TIMEOUT=15 on "$h" systemctl poweroff --no-block >/dev/null 2>&1 || true
  done
  deadline=$((SECONDS + 60))
  for h in "${!NSPAWN_PID[@]}"; do
    while kill -0 "${NSPAWN_PID[$h]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "${NSPAWN_PID[$h]}" 2>/dev/null; then
      echo "poweroff: $h did not stop within 60 s; terminating systemd-nspawn" >&2
      kill -TERM "${NSPAWN_PID[$h]}" 2>/dev/null || true
      sleep 5
      [[ -z ${LEADER[$h]:-} ]] || kill -KILL "${LEADER[$h]}" 2>/dev/null || true
      kill -KILL "${NSPAWN_PID[$h]}" 2>/dev/null || true
    fi
    wait "${NSPAWN_PID[$h]}" 2>/dev/null || true
  done
  NSPAWN_PID=() LEADER=()
}

remove_tree() {
  local dir=$1 m
  [[ -n $dir && -d $dir ]] || return 0
  while read -r m; do umount -l "$m" 2>/dev/null || true; done \
    < <(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true)
  rm -rf --one-file-system "$dir"
}

stop_load() {
  [[ -n $LOAD_PID ]] || return 0
  touch "$WORK/load/stop"
  timeout 20 tail --pid="$LOAD_PID" -f /dev/null || kill -KILL "$LOAD_PID" 2>/dev/null || true
  wait "$LOAD_PID" 2>/dev/null || true
  LOAD_PID=''
}

summary() {
  local row
  printf '\n'
  say "=== summary"
  if ((${#TABLE[@]})); then
    printf '  %-24s %6s %7s %7s %8s %9s  %s\n' scenario GETs failed orders retried recovery result
    printf '  (orders: keys sent; retried: attempts that failed and were sent again; recovery:\n'
    printf '  the longest outage, or 2: the kill to HAProxy dropping app2, 3: the promotion to\n'
    printf '  the first order acknowledged, 4: the kill to the first new order completed)\n'
    for row in "${TABLE[@]}"; do printf '  %s\n' "$row"; done
  fi
  printf '  total %d s\n' $((SECONDS - T0))
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
  exec 1>&7 2>&8
  if [[ -n $BOUNDED_PID ]] && kill -0 "$BOUNDED_PID" 2>/dev/null; then
    kill -TERM "$BOUNDED_PID" 2>/dev/null
    sleep 1
    kill -KILL "$BOUNDED_PID" 2>/dev/null
    wait "$BOUNDED_PID" 2>/dev/null
  fi
  stop_load
  if [[ -n ${HOLD:-} ]] && ((${#LEADER[@]})); then
    printf 'HOLD: the containers stay up until %s is removed; ' "$WORK/hold"
    for h in "${!LEADER[@]}"; do printf '%s=%s ' "$h" "${LEADER[$h]}"; done
    printf '(nsenter -t PID -a ...)\n'
    touch "$WORK/hold"
    while [[ -e $WORK/hold ]]; do sleep 1; done
  fi
  if ((${#NSPAWN_PID[@]})) && ((status != 0 || ${#FAILS[@]})); then
    local h
    for h in "${!LEADER[@]}"; do
      CIN_TIMEOUT=15 on "$h" journalctl -n 300 --no-pager -o short-precise >"$LOGS/journal-$h.log" 2>&1
    done
  fi
  poweroff_all
  [[ -z $NETNS_MADE ]] || ip netns delete "$NETNS" 2>/dev/null
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

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, ip netns, systemd-nspawn and nsenter need it)"
for tool in debootstrap systemd-nspawn nsenter ip jq curl pgrep /usr/bin/python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (tests/system/run.sh installs the host tools)"
done
WORK=$(mktemp -d /tmp/bookstore-cluster.XXXXXX)
LOGS=$(mktemp -d /tmp/bookstore-cluster-logs.XXXXXX)
if ! mountpoint -q /run/systemd/nspawn; then
  mkdir -p /run/systemd/nspawn
  timeout 10 mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
fi

# --- packages ------------------------------------------------------------------

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
  ok "built"
fi
deb_files=()
for p in "${PACKAGES[@]}"; do
  f=("$DEBS/${p}"_*.deb)
  [[ ${#f[@]} -eq 1 && -f ${f[0]} ]] || die "expected one ${p}_*.deb in $DEBS, found: ${f[*]}"
  deb_files+=("${f[0]}")
done
in_debs=("${deb_files[@]/#"$DEBS"/$IN_DEBS}")
mapfile -t runtime_deps < <(for f in "${deb_files[@]}"; do dpkg-deb -f "$f" Depends; done \
  | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' \
  | grep -v -e '^$' -e '^bookstore-' | sort -u)

# --- the prepared root (as tests/system/run.sh, with HAProxy and Sentinel) ----------

section "Debian 12 root"
find_mirror() {
  apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
    'Identifier: Packages' 2>/dev/null | awk -v s="$1" '$2 == s && $3 == "main" { print $1; exit }'
}
MIRROR=${BOOKSTORE_DEBIAN_MIRROR:-$(find_mirror "$SUITE")}
[ -n "$MIRROR" ] || die "no apt source for $SUITE main on this host; set BOOKSTORE_DEBIAN_MIRROR"
SECURITY=${BOOKSTORE_SECURITY_MIRROR:-$(find_mirror "$SUITE-security")}
mapfile -t packages < <(printf '%s\n' "${ROOT_PACKAGES[@]}" "${runtime_deps[@]}" | sort -u)
key=$(printf '%s\n' "recipe=$ROOT_RECIPE" "suite=$SUITE" "include=$DEBOOTSTRAP_INCLUDE" \
  "mirror=$MIRROR" "security=$SECURITY" "${packages[@]}" | sha256sum | cut -c 1-16)
KEY_FILE=.bookstore-test-root

root_is_current() { [[ -f $CACHE/$KEY_FILE && $(cat "$CACHE/$KEY_FILE") == "$key" ]]; }

build_root() {
  local tmp
  for tmp in "$CACHE".tmp.*; do remove_tree "$tmp"; done
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
  # every host starts with nothing of ours running: each enables what it runs
  bounded 60 systemd-nspawn -q -D "$tmp" --register=no --keep-unit sh -c \
    'systemctl mask systemd-networkd-wait-online.service &&
     systemctl disable postgresql redis-server redis-sentinel haproxy' >>"$LOGS/root-apt.log" 2>&1
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
exec 9>"$CACHE.lock"
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
  flock -s 9
fi

# --- the bridge and the containers ---------------------------------------------------

section "boot five containers on a private bridge"
ip netns add "$NETNS"
NETNS_MADE=1
in_ns ip link set lo up
in_ns ip link add br0 type bridge
in_ns ip addr add "$CLIENT/24" dev br0
in_ns ip link set br0 up
ok "network namespace $NETNS: bridge br0 $CLIENT/24, no route anywhere else"

boot() { # boot HOST: start it; sets NSPAWN_PID and LEADER
  local h=$1 deadline
  setsid nsenter --net="/run/netns/$NETNS" systemd-nspawn -D "$CACHE" -M "bs-$h-$$" \
    --hostname="$h" --register=no --keep-unit --volatile=overlay --network-bridge=br0 \
    --bind-ro="$DEBS:$IN_DEBS" --console=passive -b >"$LOGS/console-$h.log" 2>&1 </dev/null &
  NSPAWN_PID[$h]=$!
  deadline=$((SECONDS + 30))
  until LEADER[$h]=$(pgrep -P "${NSPAWN_PID[$h]}" -x systemd); do
    kill -0 "${NSPAWN_PID[$h]}" 2>/dev/null || { cat "$LOGS/console-$h.log"; die "systemd-nspawn for $h exited"; }
    ((SECONDS < deadline)) || die "no systemd in $h after 30 s"
    sleep 0.2
  done
  # the host's ip in the container's network namespace: the root needs no iproute2
  nsenter -t "${LEADER[$h]}" -n ip addr add "${ADDR[$h]}/24" dev host0
  nsenter -t "${LEADER[$h]}" -n ip link set host0 up
}
for h in "${HOSTS[@]}"; do boot "$h"; done
for h in "${HOSTS[@]}"; do
  state='' deadline=$((SECONDS + 120))
  until [[ $state == running || $state == degraded ]]; do
    ((SECONDS < deadline)) || die "$h not up after 120 s (state: $state)"
    sleep 0.5
    state=$(CIN_TIMEOUT=10 on "$h" systemctl is-system-running 2>/dev/null || true)
  done
  ok "$h booted (${ADDR[$h]}, systemd pid ${LEADER[$h]}): $state"
  # the root's /etc/hostname is the build host's: the consumer names (%H) must differ
  sh_on "$h" 'echo "$1" >/etc/hostname && hostname "$1"' "$h"
  # the root has every engine enabled: each host keeps only its own
  case $h in
    db1 | db2) unneeded=(haproxy) ;;
    lb) unneeded=(postgresql "postgresql@$PG_MAJOR-main" redis-server) ;;
    *) unneeded=(postgresql "postgresql@$PG_MAJOR-main" redis-server redis-sentinel haproxy) ;;
  esac
  on "$h" systemctl mask --now "${unneeded[@]}" >/dev/null 2>&1 || fail "$h: systemctl mask --now ${unneeded[*]}"
  [[ $state == running ]] || info "$h: failed units: $(on "$h" systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd ' ')"
done
expect_eq "no default route in any container: only the bridge ($NET.0/24) is reachable" "" \
  "$(for h in "${HOSTS[@]}"; do nsenter -t "${LEADER[$h]}" -n ip route show default; done)"

# --- the database hosts ------------------------------------------------------------

section "db1: PostgreSQL primary, Redis master, Sentinel; db2: streaming replica, Redis replica, Sentinel"
# put HOST PATH: stdin into a file in a container (through its root, from the host)
put() { cat >"/proc/${LEADER[$1]}/root$2"; }
pg_conf() { # the same settings on both: reachable on the bridge only
  put "$1" /etc/postgresql/$PG_MAJOR/main/conf.d/cluster.conf <<CONF
listen_addresses = '*'
wal_level = replica
hot_standby = on
CONF
  # the test's own network only; production would use scram-sha-256 and TLS
  sh_on "$1" 'printf "host all all %s.0/24 trust\nhost replication all %s.0/24 trust\n" "$1" "$1" \
    >>/etc/postgresql/$2/main/pg_hba.conf' "$NET" "$PG_MAJOR"
}
# Redis with the default user off, as docs/configuration.md advises: an administrator,
# the replication and Sentinel users of Redis' documentation, and (later,
# bookstore-setup-redis from app1) one user per program, on both servers
# (ACL users are not replicated)
random_hex() { od -An -v -tx1 -N16 /dev/urandom | tr -d ' \n'; }
REDIS_ADMIN_PW=$(random_hex) REDIS_REPL_PW=$(random_hex) REDIS_SENTINEL_PW=$(random_hex)
redis_conf() { # HOST [REPLICAOF]
  sh_on "$1" 'printf "%s\n" "bind 0.0.0.0" "protected-mode no" "user default off" \
    "user admin on >$2 ~* &* +@all" "user replicator on >$3 +psync +replconf +ping" \
    "user sentinel on >$4 allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill" \
    "masteruser replicator" "masterauth $3" ${1:+"replicaof $1 6379"} >>/etc/redis/redis.conf' \
    "${2:-}" "$REDIS_ADMIN_PW" "$REDIS_REPL_PW" "$REDIS_SENTINEL_PW"
}
rcli() { # HOST ARGS...: redis-cli there as the administrator
  on "$1" env REDISCLI_AUTH="$REDIS_ADMIN_PW" redis-cli --no-auth-warning --user admin "${@:2}"
}
sentinel_conf() { # HOST: monitor db1's Redis as "bookstore", quorum 2 of 3
  sh_on "$1" 'sed -i "/^sentinel .*mymaster/d; /^bind /d; /^protected-mode /d" /etc/redis/sentinel.conf &&
    printf "%s\n" "bind 0.0.0.0" "protected-mode no" "sentinel monitor bookstore $1 6379 2" \
      "sentinel down-after-milliseconds bookstore 2000" "sentinel failover-timeout bookstore 10000" \
      "sentinel parallel-syncs bookstore 1" "sentinel auth-user bookstore sentinel" \
      "sentinel auth-pass bookstore $2" >>/etc/redis/sentinel.conf &&
    systemctl enable redis-sentinel 2>/dev/null && systemctl restart redis-sentinel' "${ADDR[db1]}" "$REDIS_SENTINEL_PW"
}
pg_conf db1
redis_conf db1
check "db1: postgresql and redis-server enabled and started" \
  sh_on db1 'systemctl enable postgresql redis-server && systemctl restart postgresql@$1-main redis-server' "$PG_MAJOR"
# the databases and roles from the packages' own setup: Books and Orders
# installed here set them up (postinst), then are stopped: db1 serves no API
if CIN_TIMEOUT=300 on db1 env DEBIAN_FRONTEND=noninteractive apt-get install -y \
  "${in_debs[0]}" "${in_debs[1]}" "${in_debs[2]}" >"$LOGS/apt-db1.log" 2>&1 &&
  ! grep -q 'database not set up' "$LOGS/apt-db1.log" &&
  on db1 systemctl disable --now bookstore.target bookstore-books bookstore-orders >>"$LOGS/apt-db1.log" 2>&1; then
  ok "db1: books_db and orders_db made by bookstore-setup-database (postinst); the daemons stopped there"
else
  tail -n 30 "$LOGS/apt-db1.log"
  die "setting up the databases on db1 failed"
fi
pg_conf db2
redis_conf db2 "${ADDR[db1]}"
if CIN_TIMEOUT=180 sh_on db2 'systemctl stop postgresql && rm -rf /var/lib/postgresql/$2/main &&
  runuser -u postgres -- pg_basebackup -h "$1" -U postgres -D /var/lib/postgresql/$2/main -R -X stream -c fast &&
  systemctl enable postgresql redis-server && systemctl restart postgresql@$2-main redis-server' "${ADDR[db1]}" "$PG_MAJOR" >"$LOGS/db2.log" 2>&1; then
  ok "db2: pg_basebackup -R from db1, started as a standby; Redis replicaof db1"
else
  cat "$LOGS/db2.log"
  die "making db2 a standby failed"
fi
for h in db1 db2 lb; do sentinel_conf "$h"; done
as_pg() { on "$1" runuser -u postgres -- psql -X -qAt "${@:2}"; }
replicating() {
  [[ $(as_pg db1 -c "SELECT count(*) > 0 FROM pg_stat_replication WHERE state = 'streaming' AND client_addr = '${ADDR[db2]}'") == t ]]
}
if wait_until 30 replicating; then ok "db1 streams to db2 (pg_stat_replication)"; else fail "db1 streams to db2"; fi
expect_eq "db2 is in recovery (a hot standby)" t "$(as_pg db2 -c 'SELECT pg_is_in_recovery()' 2>&1)"
redis_role() { rcli "$1" ROLE 2>/dev/null | head -n 1; }
wait_until 20 eval '[[ $(rcli db2 INFO replication | tr -d "\r" | grep "^master_link_status:") == master_link_status:up ]]' || true
expect_eq "Redis: db1 master, db2 replica with its link up" "master slave up" \
  "$(redis_role db1) $(redis_role db2) $(rcli db2 INFO replication | tr -d '\r' | sed -n 's/^master_link_status://p')"
check "Redis: the default user is off (PING without a login refused)" \
  sh_on db1 'redis-cli PING 2>&1 | grep -E "NOAUTH|WRONGPASS"'
sentinel_master() { on "$1" redis-cli -p 26379 SENTINEL get-master-addr-by-name bookstore 2>/dev/null | head -n 1; }
sentinels_agree() { # EXPECTED: every sentinel names it, and each knows the other two
  local h
  for h in db1 db2 lb; do
    [[ $(sentinel_master "$h") == "$1" ]] || return 1
    [[ $(on "$h" redis-cli -p 26379 SENTINEL sentinels bookstore | grep -c '^ip$') == 2 ]] || return 1
  done
}
if wait_until 30 sentinels_agree "${ADDR[db1]}"; then
  ok "three sentinels (db1, db2, lb) monitor bookstore = ${ADDR[db1]}:6379 and know each other"
else
  fail "the sentinels agree on db1" "$(for h in db1 db2 lb; do echo "$h: $(sentinel_master "$h")"; done)"
fi

# --- the application hosts ------------------------------------------------------------

section "app1, app2: the packages, configured for the cluster; lb: HAProxy"
SENTINELS=${ADDR[db1]}:26379,${ADDR[db2]}:26379,${ADDR[lb]}:26379
PG_HOSTS=${ADDR[db1]},${ADDR[db2]}
for h in app1 app2; do
  if CIN_TIMEOUT=300 on "$h" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${in_debs[@]}" \
    >"$LOGS/apt-$h.log" 2>&1; then
    ok "$h: apt-get install -y ${in_debs[*]##*/}"
  else
    tail -n 30 "$LOGS/apt-$h.log"
    die "installing the packages on $h failed"
  fi
done
# Redis users for Orders and the worker, made from app1 on both servers
# (the same passwords), then app1's credentials and drop-ins copied to app2
for h in db1 db2; do
  if on app1 env REDISCLI_AUTH="$REDIS_ADMIN_PW" bookstore-setup-redis --host "${ADDR[$h]}" \
    --admin-user admin orders worker >>"$LOGS/setup-redis.log" 2>&1; then
    ok "bookstore-setup-redis --host ${ADDR[$h]} --admin-user admin orders worker (on app1)"
  else
    fail "bookstore-setup-redis against $h" "$(cat "$LOGS/setup-redis.log")"
  fi
done
cp -a "/proc/${LEADER[app1]}/root/etc/bookstore/redis" "/proc/${LEADER[app2]}/root/etc/bookstore/"
for d in bookstore-orders.service.d bookstore-worker.service.d bookstore-worker@.service.d; do
  mkdir -p "/proc/${LEADER[app2]}/root/etc/systemd/system/$d"
  cp -a "/proc/${LEADER[app1]}/root/etc/systemd/system/$d/redis-user.conf" "/proc/${LEADER[app2]}/root/etc/systemd/system/$d/"
done
on app2 systemctl daemon-reload
# one set of tokens for the cluster: app1's, copied to app2
rm -rf "/proc/${LEADER[app2]}/root/etc/bookstore/tokens"
cp -a "/proc/${LEADER[app1]}/root/etc/bookstore/tokens" "/proc/${LEADER[app2]}/root/etc/bookstore/tokens"
on app2 chgrp -R bookstore /etc/bookstore/tokens
for h in app1 app2; do
  sh_on "$h" 'cat >>/etc/bookstore/books.env <<CONF
BOOKS_DB_DSN="host=$1 dbname=books_db user=bookstore-books target_session_attrs=read-write connect_timeout=2"
BOOKS_DB_READ_DSN="host=$2 dbname=books_db user=bookstore-books target_session_attrs=prefer-standby connect_timeout=2"
TRUSTED_PROXIES=$3
RATE_LIMIT_WRITES=0
CONF
cat >>/etc/bookstore/orders.env <<CONF
DATABASE_URL="host=$1 dbname=orders_db user=bookstore-orders target_session_attrs=read-write connect_timeout=2"
REDIS_HOST=
REDIS_PORT=
REDIS_SENTINELS=$4
REDIS_MASTER_NAME=bookstore
TRUSTED_PROXIES=$3
RATE_LIMIT_WRITES=0
CONF
cat >>/etc/bookstore/worker.env <<CONF
REDIS_HOST=
REDIS_PORT=
REDIS_SENTINELS=$4
REDIS_MASTER_NAME=bookstore
WORKER_CLAIM_IDLE_MS=5000
CONF
systemctl reset-failed && systemctl restart bookstore.target' \
    "$PG_HOSTS" "${ADDR[db2]},${ADDR[db1]}" "${ADDR[lb]}" "$SENTINELS"
done
SERVICES=(bookstore-books bookstore-orders bookstore-worker)
app_healthy() { # HOST: the three services' /health answer 200
  local h=$1
  for port in 8001 8082 9100; do
    [[ $(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://${ADDR[$h]}:$port/health") == 200 ]] || return 1
  done
}
for h in app1 app2; do
  if wait_until 60 app_healthy "$h"; then
    ok "$h: books, orders and worker active, /health 200 on the bridge (the databases on db1/db2, Redis through Sentinel)"
  else
    fail "$h: books, orders and worker healthy" \
      "$(for p in 8001 8082 9100; do in_ns curl -s --max-time 2 "http://${ADDR[$h]}:$p/health"; echo; done
        on "$h" journalctl -u 'bookstore-*' -n 40 --no-pager -o cat)"
  fi
done
logged_in() { # HOST: Orders and the worker logged in to Redis as their own users
  local j
  j=$(on "$1" journalctl -u bookstore-orders -u bookstore-worker -o cat --no-pager)
  grep ":6379 as bookstore-orders" <<<"$j" >/dev/null && grep ":6379 as bookstore-worker" <<<"$j" >/dev/null
}
for h in app1 app2; do
  check "$h: Orders and the worker logged in to Redis as bookstore-orders and bookstore-worker" \
    wait_until 10 logged_in "$h"
done
ADMIN_TOKEN=$(cat "/proc/${LEADER[app1]}/root/etc/bookstore/tokens/admin.token")

sed -e "s/192\.0\.2\.11/${ADDR[app1]}/" -e "s/192\.0\.2\.12/${ADDR[app2]}/" \
  "$ROOT_DIR/data/haproxy/bookstore-haproxy.cfg" | put lb /etc/haproxy/haproxy.cfg
# Once in four CI runs the first start in the fresh container failed and
# systemd's Restart=always started it a moment later (cause not found: the
# journal had rotated). Wait for that, and keep what the failure said.
check "lb: haproxy -c on data/haproxy/bookstore-haproxy.cfg with app1 and app2; haproxy started" \
  sh_on lb 'haproxy -c -f /etc/haproxy/haproxy.cfg || exit 1
    systemctl restart haproxy && exit 0
    journalctl -u haproxy -n 40 --no-pager -o short-precise >/var/log/haproxy-first-start.log 2>&1
    for _ in $(seq 40); do systemctl is-active --quiet haproxy && exit 0; sleep 0.5; done
    cat /var/log/haproxy-first-start.log; exit 1'
lb_up() { # both backends answer through the lb
  [[ $(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$LB:8001/health") == 200 &&
    $(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$LB:8082/health") == 200 ]]
}
if wait_until 20 lb_up; then ok "GET $LB:8001/health and :8082/health → 200 through HAProxy"
else fail "HAProxy serves Books and Orders"; fi
book=$(in_ns curl -s --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"title": "Cluster", "author": "Test", "price": "9.99"}' "$LB:8001/v1/books")
BOOK_ID=$(jq -r '.id // empty' <<<"$book" 2>/dev/null || true)
[[ $BOOK_ID =~ ^[0-9]+$ ]] || die "POST $LB:8001/v1/books with app1's admin token: $book"
ok "POST $LB:8001/v1/books with app1's admin token → book $BOOK_ID (the tokens are shared)"

# --- load and scenarios -----------------------------------------------------------------

PRIMARY=db1 # where orders_db is written; db2 after the switchover
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; } # secs FROM TO
load_py() { /usr/bin/python3 "$HERE/load.py" "$@"; }
mkdir -p "$WORK/load"
LOAD_TOKEN=$ADMIN_TOKEN setsid nsenter --net="/run/netns/$NETNS" /usr/bin/python3 "$HERE/load.py" \
  run "$WORK/load" "$LB" "$BOOK_ID" >"$LOGS/load.log" 2>&1 </dev/null &
LOAD_PID=$!
sleep 5
info "load from $CLIENT through HAProxy: $(load_py report "$WORK/load" 0 "$(now)" | jq -r '"\(.gets) GETs, \(.acked) orders acknowledged in the first 5 s"')"

S_SHORT='' S_T0=''
scenario() { # scenario SHORT NAME: a section whose load is measured
  section "$2"
  S_SHORT=$1 S_T0=$(now)
}
main_pids() { # HOST: the main pids of the three services and their restart counts
  on "$1" systemctl show -P MainPID -P NRestarts "${SERVICES[@]}" | paste -sd ' '
}
orders_rows() { # every order of the test's book on the current primary: id|key|status
  as_pg "$PRIMARY" -d orders_db -c "SELECT id, coalesce(idempotency_key, ''), status FROM orders WHERE book_id = $BOOK_ID"
}
db_check() { # T1: the acknowledged orders before T1 against the database; sets CHECK
  orders_rows >"$WORK/rows" 2>"$WORK/rows.err" || return 1
  CHECK=$(load_py check "$WORK/load" "$WORK/rows" "$1")
  jq -e '.not_final == 0 and .lost == 0' <<<"$CHECK" >/dev/null
}
# end_scenario [RECOVERY_S]: a few more seconds of load, then the client's
# numbers, the database check, and a row of the summary
end_scenario() {
  local t1 report recovery result=ok before=${#FAILS[@]}
  sleep 3
  t1=$(now)
  report=$(load_py report "$WORK/load" "$S_T0" "$t1")
  recovery=${1:-$(jq -r '.recovery_s // "never"' <<<"$report")}
  info "client: $(jq -c '{gets, gets_failed, orders, order_attempts, order_attempts_failed, acked, gaveup}' <<<"$report")"
  if jq -e '.failed_examples | length > 0' <<<"$report" >/dev/null; then
    info "failed requests, e.g.: $(jq -c '.failed_examples' <<<"$report")"
  fi
  expect_eq "no order given up by the client (each retried with its key until acknowledged)" 0 \
    "$(jq -r .gaveup <<<"$report")"
  CHECK='{}'
  wait_until 60 db_check "$t1" || true
  info "database ($PRIMARY): $CHECK"
  if jq -e '.acked > 0 and .lost == 0 and .duplicated == 0 and .mismatched == 0 and .not_final == 0' \
    <<<"$CHECK" >/dev/null; then
    ok "every acknowledged order so far ($(jq -r .acked <<<"$CHECK")) is in orders_db once, with its key, and completed or failed: $(jq -c .statuses <<<"$CHECK")"
  else
    fail "0 lost, 0 duplicated, every acknowledged order completed or failed (within 60 s)" \
      "$CHECK$(cat "$WORK/rows.err" 2>/dev/null)"
  fi
  ((${#FAILS[@]} == before)) || result="FAIL($((${#FAILS[@]} - before)))"
  TABLE+=("$(printf '%-24s %6s %7s %7s %8s %8ss  %s' "$S_SHORT" "$(jq -r .gets <<<"$report")" \
    "$(jq -r .gets_failed <<<"$report")" "$(jq -r .orders <<<"$report")" \
    "$(jq -r .order_attempts_failed <<<"$report")" "$recovery" "$result")")
}

scenario "1 rolling restart" "1. rolling restart: app1, then app2 (systemctl restart bookstore.target)"
for h in app1 app2; do
  t=$(now)
  pids_before=$(on "$h" systemctl show -P MainPID "${SERVICES[@]}" | grep . | paste -sd ' ')
  check "$h: systemctl restart bookstore.target" on "$h" systemctl restart bookstore.target
  pids_after=$(on "$h" systemctl show -P MainPID "${SERVICES[@]}" | grep . | paste -sd ' ')
  read -r -a before <<<"$pids_before"
  read -r -a after <<<"$pids_after"
  for i in "${!SERVICES[@]}"; do
    [[ ${before[$i]} != "${after[$i]:-}" && ${after[$i]:-0} != 0 ]] ||
      fail "$h: ${SERVICES[$i]} restarted" "main pid ${before[$i]} → ${after[$i]:-?}"
  done
  info "$h: main pids $pids_before → $pids_after"
  if wait_until 60 app_healthy "$h"; then ok "$h healthy again after $(secs "$t" "$(now)") s"
  else fail "$h healthy again within 60 s"; fi
  sleep 3 # HAProxy takes it back after two good checks a second apart
done
report=$(load_py report "$WORK/load" "$S_T0" "$(now)")
expect_eq "0 failed GETs through HAProxy during the rolling restart" 0 "$(jq -r .gets_failed <<<"$report")"
end_scenario

scenario "2 app2 killed" "2. app2 killed: HAProxy drops it, app1's worker takes its pending entries"
redis_on_master() { rcli db1 "$@"; } # db1 is the master until scenario 4
pending_of() { # CONSUMER: entries of bookstore:orders:events delivered to it and not acknowledged
  redis_on_master XPENDING bookstore:orders:events bookstore-workers - + 10000 "$1" | awk 'NR % 4 == 1' | grep -c . || true
}
# a worker that stops answering first (SIGSTOP: what it has read stays
# pending, and Redis keeps handing its blocked read new entries), then the
# whole host gone at once: SIGKILL to its init, every process with it
check "app2: bookstore-worker frozen (SIGSTOP)" on app2 systemctl kill --kill-who=main -s SIGSTOP bookstore-worker
sleep 1.5
t_kill=$(now)
kill -KILL "${LEADER[app2]}"
wait "${NSPAWN_PID[app2]}" 2>/dev/null || true
unset 'NSPAWN_PID[app2]' 'LEADER[app2]'
pending=$(pending_of app2)
info "app2 killed (SIGKILL to its systemd); entries pending on its worker (consumer app2): $pending"
((pending > 0)) || fail "app2's worker had entries pending when it died (else nothing shows they are taken over)"
haproxy_down() { # the time HAProxy logged both of app2's servers DOWN (Unix seconds)
  local times
  times=$(on lb journalctl -u haproxy -o json --no-pager --since "@${t_kill%.*}" |
    jq -r 'select((.MESSAGE | type) == "string" and (.MESSAGE | test("Server (books|orders)/app2 is DOWN"))) | .__REALTIME_TIMESTAMP')
  [[ $(grep -c . <<<"$times") -ge 2 ]] || return 1
  sort -n <<<"$times" | tail -n 1 | awk '{ printf "%.3f\n", $1 / 1000000 }'
}
if wait_until 15 haproxy_down; then
  down=$(secs "$t_kill" "$(haproxy_down)")
  if awk -v d="$down" 'BEGIN { exit !(d <= 3) }'; then ok "HAProxy marked books/app2 and orders/app2 DOWN ${down} s after the kill (≤ 3 s)"
  else fail "HAProxy drops app2 within 3 s" "${down} s"; fi
else
  down=never
  fail "HAProxy logged books/app2 and orders/app2 DOWN" "$(on lb journalctl -u haproxy -n 20 --no-pager -o cat)"
fi
if wait_until 45 eval '[[ $(pending_of app2) == 0 ]]'; then
  ok "app2's pending entries were taken over: none left on consumer app2 (WORKER_CLAIM_IDLE_MS=5000)"
  claimed=$(on app1 journalctl -u bookstore-worker -o cat --no-pager --since "@${t_kill%.*}" | grep -ci 'claim' || true)
  info "app1's worker journal lines about claims since the kill: $claimed"
else
  fail "app2's pending entries taken over by app1 within 45 s" "still pending: $(pending_of app2)"
fi
end_scenario "$down"

scenario "3 PostgreSQL switchover" "3. PostgreSQL switchover: db1 stopped, db2 promoted"
pids_before=$(main_pids app1)
t_stop=$(now)
check "db1: systemctl stop postgresql@$PG_MAJOR-main (the primary away)" on db1 systemctl stop "postgresql@$PG_MAJOR-main"
sleep 4 # Books' GETs meanwhile: from the replica
t_promote=$(now)
check "db2: pg_promote()" as_pg db2 -c 'SELECT pg_promote()'
PRIMARY=db2
first_order_after() { # T: the end of the first acknowledged order sent after T
  jq -r --argjson t "$1" 'select(.k == "order" and .id != null and .t >= $t) | .t + .d' "$WORK/load/events.jsonl" |
    head -n 1 | grep .
}
if wait_until 30 first_order_after "$t_promote"; then
  rec=$(secs "$t_promote" "$(first_order_after "$t_promote")")
  if awk -v d="$rec" 'BEGIN { exit !(d <= 10) }'; then ok "orders acknowledged again ${rec} s after the promotion (≤ 10 s)"
  else fail "orders succeed again within 10 s of the promotion" "${rec} s"; fi
else
  rec=never
  fail "orders succeed again after the promotion" "$(tail -n 5 "$WORK/load/events.jsonl")"
fi
report=$(load_py report "$WORK/load" "$t_stop" "$t_promote")
expect_eq "Books GETs while the primary was away (from the replica): 0 failed of $(jq -r .gets <<<"$report")" 0 \
  "$(jq -r .gets_failed <<<"$report")"
expect_eq "no daemon restarted on app1 (main pids and NRestarts unchanged)" "$pids_before" "$(main_pids app1)"
end_scenario "$rec"

expect_eq "no ACL refusal on db1's Redis so far (ACL LOG)" "" "$(rcli db1 ACL LOG | head -n 20)"
scenario "4 Redis failover" "4. Redis master killed: Sentinel fails over to db2"
pids_before=$(main_pids app1)
t_kill=$(now)
check "db1: redis-server killed (SIGKILL), and kept down" \
  sh_on db1 'systemctl kill -s SIGKILL redis-server; systemctl stop redis-server'
if wait_until 30 sentinels_agree "${ADDR[db2]}"; then
  failover=$(secs "$t_kill" "$(now)")
  ok "the sentinels name db2 (${ADDR[db2]}) the master of bookstore ${failover} s after the kill"
else
  failover=never
  fail "the sentinels fail over to db2" "$(for h in db2 lb; do echo "$h: $(sentinel_master "$h")"; done)"
fi
for unit in bookstore-orders bookstore-worker; do
  if wait_until 20 eval 'on app1 journalctl -u "$unit" -o cat --no-pager | grep "is now ${ADDR[db2]}:6379" >/dev/null'; then
    ok "$unit followed: $(on app1 journalctl -u "$unit" -o cat --no-pager | grep "is now ${ADDR[db2]}:6379" | head -n 1)"
  else
    fail "$unit followed the new master" "$(on app1 journalctl -u "$unit" -n 20 -o cat --no-pager)"
  fi
done
# the events flow again: an order created after the kill (its event waited
# in the outbox) completed by the worker, through the new master
flowing() {
  as_pg "$PRIMARY" -d orders_db -c "SELECT extract(epoch FROM min(h.created_at)) FROM order_status_history h
    JOIN orders o ON o.id = h.order_id WHERE h.status = 'completed' AND o.created_at > to_timestamp($t_kill)" | grep .
}
if wait_until 30 flowing; then
  flow=$(secs "$t_kill" "$(flowing)")
  ok "the first order created after the kill was completed ${flow} s after it (relay → new master → worker)"
else
  flow=never
  fail "orders created after the kill are completed within 30 s"
fi
expect_eq "no daemon restarted on app1 (main pids and NRestarts unchanged)" "$pids_before" "$(main_pids app1)"
expect_eq "no ACL refusal on db2's Redis, the new master (ACL LOG)" "" "$(rcli db2 ACL LOG | head -n 20)"
end_scenario "$flow"

stop_load
