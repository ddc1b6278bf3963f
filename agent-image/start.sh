#!/usr/bin/env bash
# Entry point of the agent image (agent-image/README.md): registers an Azure Pipelines agent from
# its environment, runs it, and on SIGTERM/SIGINT lets the running job finish before the agent
# stops and deregisters. Secrets come from files and reach config.sh alone, through the agent's
# VSTS_AGENT_INPUT_* variables (which it reads and removes), never through a command line.
set -Eeuo pipefail

readonly EXIT_BAD_CONFIG=2
# Azure DevOps' application ID in Entra: a token for it is what a PAT would otherwise be.
readonly DEVOPS_RESOURCE=499b84ac-1321-427f-aa17-267ca6975798
readonly SYSTEM_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() {
  printf 'start.sh: %s\n' "$*" >&2
}

# ---------------------------------------------------------------------------------------------
# Configuration: validated up front, one line per problem, before anything is registered.

problems=()
problem() {
  problems+=("$*")
}

is_url() { # <value>: an http(s) URL with a host
  [[ $1 =~ ^https?://[^[:space:]/]+ ]]
}

check_secret_file() { # <variable name>: names a readable, non-empty file
  local name=$1 path=${!1:-}
  if [[ -z $path ]]; then
    problem "$name is required when AZP_AUTH=$AZP_AUTH"
  elif [[ ! -f $path || ! -r $path ]]; then
    problem "$name ($path) is not a readable file"
  elif [[ ! -s $path ]]; then
    problem "$name ($path) is empty"
  fi
}

validate() {
  AZP_POOL=${AZP_POOL:-Default}
  AZP_AGENT_NAME=${AZP_AGENT_NAME:-${HOSTNAME:-agent}}
  AZP_WORK=${AZP_WORK:-_work}
  AZP_AGENT_DIR=${AZP_AGENT_DIR:-/azp/agent}
  AZP_AUTH=${AZP_AUTH:-pat}
  AZP_MODE=${AZP_MODE:-persistent}
  AZP_DRAIN_TIMEOUT=${AZP_DRAIN_TIMEOUT:-3600}

  if [[ -z ${AZP_URL:-} ]]; then
    problem "AZP_URL is required: the organization URL, e.g. https://dev.azure.com/contoso"
  elif ! is_url "$AZP_URL"; then
    problem "AZP_URL must be an http(s) URL, got '$AZP_URL'"
  fi
  if [[ ! -x $AZP_AGENT_DIR/config.sh || ! -x $AZP_AGENT_DIR/run.sh ]]; then
    problem "AZP_AGENT_DIR ($AZP_AGENT_DIR) holds no executable config.sh and run.sh: point it at the unpacked agent"
  fi
  case $AZP_MODE in
    persistent | ephemeral | placeholder) ;;
    *) problem "AZP_MODE must be persistent, ephemeral or placeholder, got '$AZP_MODE'" ;;
  esac
  if [[ ! $AZP_DRAIN_TIMEOUT =~ ^[0-9]+$ ]]; then
    problem "AZP_DRAIN_TIMEOUT must be a whole number of seconds, got '$AZP_DRAIN_TIMEOUT'"
  fi
  if [[ -n ${AZP_CA_CERT_FILE:-} && ! (-f $AZP_CA_CERT_FILE && -r $AZP_CA_CERT_FILE) ]]; then
    problem "AZP_CA_CERT_FILE ($AZP_CA_CERT_FILE) is not a readable file"
  fi
  # The agent stores the proxy URL in plain text and shows it to jobs: credentials have no place in it.
  if [[ -n ${AZP_PROXY_URL:-} ]] && { ! is_url "$AZP_PROXY_URL" || [[ $AZP_PROXY_URL =~ ^[a-z]+://[^/]*@ ]]; }; then
    problem "AZP_PROXY_URL must be an http(s) URL without credentials, e.g. http://proxy.corp:3128"
  fi

  case $AZP_AUTH in
    pat)
      check_secret_file AZP_TOKEN_FILE
      ;;
    sp)
      [[ -n ${AZP_CLIENT_ID:-} ]] || problem "AZP_CLIENT_ID is required when AZP_AUTH=sp"
      [[ -n ${AZP_TENANT_ID:-} ]] || problem "AZP_TENANT_ID is required when AZP_AUTH=sp"
      check_secret_file AZP_CLIENT_SECRET_FILE
      ;;
    workload-identity)
      # The AZURE_* variables are the ones AKS workload identity injects into the pod.
      AZP_CLIENT_ID=${AZP_CLIENT_ID:-${AZURE_CLIENT_ID:-}}
      AZP_TENANT_ID=${AZP_TENANT_ID:-${AZURE_TENANT_ID:-}}
      AZURE_AUTHORITY_HOST=${AZURE_AUTHORITY_HOST:-https://login.microsoftonline.com/}
      if [[ ! ${AZP_CLIENT_ID} =~ ^[A-Za-z0-9-]+$ ]]; then
        problem "AZP_CLIENT_ID or AZURE_CLIENT_ID must hold the identity's client ID when AZP_AUTH=workload-identity"
      fi
      if [[ ! ${AZP_TENANT_ID} =~ ^[A-Za-z0-9.-]+$ ]]; then
        problem "AZP_TENANT_ID or AZURE_TENANT_ID must hold the tenant ID when AZP_AUTH=workload-identity"
      fi
      [[ $AZURE_AUTHORITY_HOST == https://* ]] || problem "AZURE_AUTHORITY_HOST must be an https URL, got '$AZURE_AUTHORITY_HOST'"
      check_secret_file AZURE_FEDERATED_TOKEN_FILE
      ;;
    *)
      problem "AZP_AUTH must be pat, sp or workload-identity, got '$AZP_AUTH'"
      ;;
  esac

  if ((${#problems[@]})); then
    local line
    for line in "${problems[@]}"; do log "$line"; done
    exit "$EXIT_BAD_CONFIG"
  fi
}

# ---------------------------------------------------------------------------------------------
# Secrets and credentials.

read_secret() { # <file>: prints the file's content without surrounding white space
  local value
  value=$(<"$1")
  value=${value#"${value%%[![:space:]]*}"}
  printf '%s' "${value%"${value##*[![:space:]]}"}"
}

# Extra CA certificates go to curl as one bundle with the system's, so a private CA for Azure
# DevOps Server or a TLS-inspecting proxy does not shut out Entra's public certificate.
curl_ca_args=()
prepare_ca_bundle() {
  [[ -n ${AZP_CA_CERT_FILE:-} ]] || return 0
  export NODE_EXTRA_CA_CERTS=$AZP_CA_CERT_FILE
  ca_bundle=$(mktemp)
  if [[ -r $SYSTEM_CA_BUNDLE ]]; then cat "$SYSTEM_CA_BUNDLE" >"$ca_bundle"; fi
  cat "$AZP_CA_CERT_FILE" >>"$ca_bundle"
  curl_ca_args=(--cacert "$ca_bundle")
}

# Workload identity: the pod's projected service-account token is a client assertion Entra
# accepts for the federated identity; the access token it returns stands in for a PAT.
entra_token() {
  local assertion response status body token
  assertion=$(read_secret "$AZURE_FEDERATED_TOKEN_FILE")
  if [[ ! $assertion =~ ^[A-Za-z0-9_.-]+$ ]]; then
    log "AZURE_FEDERATED_TOKEN_FILE ($AZURE_FEDERATED_TOKEN_FILE) does not hold a JWT"
    return 1
  fi
  local proxy_args=()
  [[ -z ${AZP_PROXY_URL:-} ]] || proxy_args=(--proxy "$AZP_PROXY_URL")
  # The form, assertion included, goes through stdin: argv is readable by every process.
  response=$(printf 'grant_type=client_credentials&client_id=%s&scope=%s&client_assertion_type=%s&client_assertion=%s' \
    "$AZP_CLIENT_ID" "$DEVOPS_RESOURCE%2F.default" \
    'urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer' "$assertion" |
    curl --silent --show-error --proto =https --max-time 30 --retry 3 \
      "${curl_ca_args[@]}" "${proxy_args[@]}" \
      --header 'Content-Type: application/x-www-form-urlencoded' --data-binary @- \
      --write-out '\n%{http_code}' \
      "${AZURE_AUTHORITY_HOST%/}/$AZP_TENANT_ID/oauth2/v2.0/token") || {
    log "workload identity: could not reach ${AZURE_AUTHORITY_HOST%/}"
    return 1
  }
  status=${response##*$'\n'}
  body=${response%$'\n'*}
  token=$(jq -r '.access_token // empty' <<<"$body" 2>/dev/null || true)
  if [[ $status != 200 || -z $token ]]; then
    log "workload identity: Entra answered $status: $(jq -r '[.error, .error_description] | map(select(. != null)) | join(": ") | split("\r\n")[0] | split("\n")[0]' <<<"$body" 2>/dev/null || echo 'no error description')"
    return 1
  fi
  printf '%s' "$token"
}

# Runs config.sh with the authentication AZP_AUTH selects; the secret rides in the environment of
# this one child, which the agent empties after reading.
agent_config() { # <config.sh arguments...>
  local token
  case $AZP_AUTH in
    pat)
      VSTS_AGENT_INPUT_TOKEN=$(read_secret "$AZP_TOKEN_FILE") ./config.sh "$@" --auth PAT
      ;;
    sp)
      VSTS_AGENT_INPUT_CLIENTSECRET=$(read_secret "$AZP_CLIENT_SECRET_FILE") \
        ./config.sh "$@" --auth SP --clientid "$AZP_CLIENT_ID" --tenantid "$AZP_TENANT_ID"
      ;;
    workload-identity)
      # A fresh token each time: deregistration can come hours after registration.
      token=$(entra_token) || return 1
      VSTS_AGENT_INPUT_TOKEN=$token ./config.sh "$@" --auth PAT
      ;;
  esac
}

register() {
  local args=(--unattended --url "$AZP_URL" --pool "$AZP_POOL" --agent "$AZP_AGENT_NAME"
    --work "$AZP_WORK" --replace --acceptTeeEula)
  [[ -z ${AZP_PROXY_URL:-} ]] || args+=(--proxyurl "$AZP_PROXY_URL")
  [[ -z ${AZP_CA_CERT_FILE:-} ]] || args+=(--sslcacert "$AZP_CA_CERT_FILE")
  log "registering agent '$AZP_AGENT_NAME' in pool '$AZP_POOL' at $AZP_URL ($AZP_AUTH, $AZP_MODE)"
  agent_config "${args[@]}"
}

# Deregisters, retrying with growing pauses until it works or the deadline (SECONDS) passes;
# Azure DevOps refuses while it still sees a job on the agent, and networks hiccup.
deregister() { # <deadline>
  local deadline=$1 pause=1 attempt=1
  while true; do
    if agent_config remove --unattended; then
      log "agent '$AZP_AGENT_NAME' deregistered"
      return 0
    fi
    if ((SECONDS + pause > deadline)); then
      log "could not deregister agent '$AZP_AGENT_NAME' after $attempt attempts; remove it from pool '$AZP_POOL' by hand"
      return 1
    fi
    log "deregistration failed (attempt $attempt); retrying in ${pause}s"
    sleep "$pause"
    attempt=$((attempt + 1))
    pause=$((pause < 16 ? pause * 2 : 30))
  done
}

# ---------------------------------------------------------------------------------------------
# The listener and the drain.

stop_requested=
# shellcheck disable=SC2317 # called from the traps set in main
on_stop_signal() { # <signal name>
  if [[ -z $stop_requested ]]; then log "$1 received: draining"; fi
  stop_requested=$1
}

listener_pid=
start_listener() {
  local once=()
  [[ $AZP_MODE != ephemeral ]] || once=(--once)
  # Nothing that names a credential source becomes a job capability.
  export VSO_AGENT_IGNORE="${VSO_AGENT_IGNORE:+$VSO_AGENT_IGNORE,}AZP_TOKEN_FILE,AZP_CLIENT_SECRET_FILE,AZP_CLIENT_ID,AZP_TENANT_ID,AZURE_FEDERATED_TOKEN_FILE,AZURE_CLIENT_ID,AZURE_TENANT_ID"
  # A session of its own: a terminal's Ctrl-C must not reach the listener, which would cancel the
  # job; start.sh alone decides when it stops. agent.disableupdate pins the version of the image.
  setsid env agent.disableupdate=true ./run.sh "${once[@]}" &
  listener_pid=$!
}

# True while an Agent.Worker (the process that runs a job) descends from our listener.
job_running() {
  local comm_file comm pid
  for comm_file in /proc/[0-9]*/comm; do
    { read -r comm <"$comm_file"; } 2>/dev/null || continue
    [[ $comm == Agent.Worker ]] || continue
    pid=${comm_file#/proc/}
    descends_from_listener "${pid%/comm}" && return 0
  done
  return 1
}

descends_from_listener() { # <pid>
  local pid=$1 stat
  while ((pid > 1)); do
    ((pid != listener_pid)) || return 0
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    # Fields after the command name (which may hold spaces and parentheses): state, parent's PID.
    read -r _ pid _ <<<"${stat##*) }"
  done
  return 1
}

process_running() { # <pid>: alive and not a zombie waiting to be reaped
  local stat state
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -r state _ <<<"${stat##*) }"
  [[ $state != Z ]]
}

stop_listener() {
  local tick
  kill -TERM -- "-$listener_pid" 2>/dev/null || true
  # A listener that ignores SIGTERM is killed after 30 s, so deregistration still happens; the
  # KILL also takes any process the listener left behind in its session.
  for ((tick = 0; tick < 60; tick++)); do
    process_running "$listener_pid" || break
    sleep 0.5
  done
  kill -KILL -- "-$listener_pid" 2>/dev/null || true
  wait_for "$listener_pid" || true
}

# Waits for a child to end even when trapped signals interrupt `wait`; returns its exit status.
# Stops early (status 255) once a stop is requested, if asked to.
wait_for() { # <pid> [stop-aware]
  local status
  while true; do
    status=0
    wait "$1" || status=$?
    kill -0 "$1" 2>/dev/null || return "$status"
    [[ -z ${2:-} || -z $stop_requested ]] || return 255
  done
}

drain() { # <deadline>
  local deadline=$1
  if job_running; then
    log "waiting up to ${AZP_DRAIN_TIMEOUT}s for the running job to finish"
    while job_running && ((SECONDS < deadline)); do
      sleep 0.5
    done
    if job_running; then log "drain timeout reached: the running job is cancelled"; fi
  fi
  stop_listener
}

main() {
  validate
  cd "$AZP_AGENT_DIR"
  trap 'rm -f "${ca_bundle:-}"' EXIT
  trap 'on_stop_signal SIGTERM' TERM
  trap 'on_stop_signal SIGINT' INT
  prepare_ca_bundle

  # A configuration left by an earlier run in this file system blocks config.sh; clear it the
  # agent's own way, which also removes that registration from the pool.
  if [[ -e .agent ]]; then
    log "found an earlier registration in $AZP_AGENT_DIR: removing it first"
    agent_config remove --unattended || true
  fi
  register || {
    log "registration failed"
    exit 1
  }

  if [[ $AZP_MODE == placeholder ]]; then
    log "placeholder agent registered; not starting the listener"
    exit 0
  fi

  local status=0 deadline
  if [[ -z $stop_requested ]]; then
    start_listener
    wait_for "$listener_pid" stop-aware || status=$?
  fi
  deadline=$((SECONDS + AZP_DRAIN_TIMEOUT))
  if [[ -n $stop_requested ]]; then
    [[ -z $listener_pid ]] || drain "$deadline"
    status=0
  else
    log "listener exited with status $status"
  fi
  deregister "$deadline" || status=1
  exit "$status"
}

main "$@"
