#!/usr/bin/env bash
# Entry point of the agent image (agent-image/README.md): registers an Azure Pipelines agent from
# its environment, runs it, and on SIGTERM/SIGINT lets the running job finish before the agent
# stops and deregisters. Secrets come from files and reach config.sh alone, through the agent's
# VSTS_AGENT_INPUT_* variables (which it reads and removes), never through a command line.
# AZP_MODE=cleanup runs no agent: it removes the pool's long-offline agents over the REST API.
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
  AZP_IDLE_TIMEOUT_SECONDS=${AZP_IDLE_TIMEOUT_SECONDS:-0}
  AZP_CLEANUP_OFFLINE_MINUTES=${AZP_CLEANUP_OFFLINE_MINUTES:-60}

  if [[ -z ${AZP_URL:-} ]]; then
    problem "AZP_URL is required: the organization URL, e.g. https://dev.azure.com/contoso"
  elif ! is_url "$AZP_URL"; then
    problem "AZP_URL must be an http(s) URL, got '$AZP_URL'"
  fi
  # Cleanup talks to the REST API only; every other mode runs the agent's own scripts.
  if [[ $AZP_MODE != cleanup && (! -x $AZP_AGENT_DIR/config.sh || ! -x $AZP_AGENT_DIR/run.sh) ]]; then
    problem "AZP_AGENT_DIR ($AZP_AGENT_DIR) holds no executable config.sh and run.sh: point it at the unpacked agent"
  fi
  case $AZP_MODE in
    persistent | ephemeral | placeholder | cleanup) ;;
    *) problem "AZP_MODE must be persistent, ephemeral, placeholder or cleanup, got '$AZP_MODE'" ;;
  esac
  if [[ ! $AZP_DRAIN_TIMEOUT =~ ^[0-9]+$ ]]; then
    problem "AZP_DRAIN_TIMEOUT must be a whole number of seconds, got '$AZP_DRAIN_TIMEOUT'"
  fi
  if [[ ! $AZP_IDLE_TIMEOUT_SECONDS =~ ^[0-9]+$ ]]; then
    problem "AZP_IDLE_TIMEOUT_SECONDS must be a whole number of seconds, got '$AZP_IDLE_TIMEOUT_SECONDS'"
  elif ((10#$AZP_IDLE_TIMEOUT_SECONDS > 0)) && [[ $AZP_MODE != ephemeral ]]; then
    # A persistent agent waits for work by design; only a one-job agent can be started for nothing.
    problem "AZP_IDLE_TIMEOUT_SECONDS applies to AZP_MODE=ephemeral only; unset it for AZP_MODE=$AZP_MODE"
  fi
  if [[ ! $AZP_CLEANUP_OFFLINE_MINUTES =~ ^[0-9]+$ ]]; then
    problem "AZP_CLEANUP_OFFLINE_MINUTES must be a whole number of minutes, got '$AZP_CLEANUP_OFFLINE_MINUTES'"
  fi
  if [[ -n ${AZP_CA_CERT_FILE:-} && ! (-f $AZP_CA_CERT_FILE && -r $AZP_CA_CERT_FILE) ]]; then
    problem "AZP_CA_CERT_FILE ($AZP_CA_CERT_FILE) is not a readable file"
  fi
  # The agent stores the proxy URL in plain text and shows it to jobs: credentials have no place in it.
  if [[ -n ${AZP_PROXY_URL:-} ]] && { ! is_url "$AZP_PROXY_URL" || [[ $AZP_PROXY_URL =~ ^[a-z]+://[^/]*@ ]]; }; then
    problem "AZP_PROXY_URL must be an http(s) URL without credentials, e.g. http://proxy.corp:3128"
  fi

  # Entra is asked for tokens with workload identity, and by cleanup with a service principal
  # (for registration, config.sh signs the service principal in itself).
  AZURE_AUTHORITY_HOST=${AZURE_AUTHORITY_HOST:-https://login.microsoftonline.com/}
  case $AZP_AUTH in
    pat)
      check_secret_file AZP_TOKEN_FILE
      ;;
    sp)
      [[ -n ${AZP_CLIENT_ID:-} ]] || problem "AZP_CLIENT_ID is required when AZP_AUTH=sp"
      [[ -n ${AZP_TENANT_ID:-} ]] || problem "AZP_TENANT_ID is required when AZP_AUTH=sp"
      [[ $AZP_MODE != cleanup || $AZURE_AUTHORITY_HOST == https://* ]] || problem "AZURE_AUTHORITY_HOST must be an https URL, got '$AZURE_AUTHORITY_HOST'"
      check_secret_file AZP_CLIENT_SECRET_FILE
      ;;
    workload-identity)
      # The AZURE_* variables are the ones AKS workload identity injects into the pod.
      AZP_CLIENT_ID=${AZP_CLIENT_ID:-${AZURE_CLIENT_ID:-}}
      AZP_TENANT_ID=${AZP_TENANT_ID:-${AZURE_TENANT_ID:-}}
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

# An Entra access token for Azure DevOps (client credentials grant), printed on stdout. The
# credential is the pod's projected service-account token for workload identity (a client
# assertion Entra accepts for the federated identity), or the service principal's secret.
entra_token() {
  local credential response status body token
  case $AZP_AUTH in
    workload-identity)
      credential=$(read_secret "$AZURE_FEDERATED_TOKEN_FILE")
      if [[ ! $credential =~ ^[A-Za-z0-9_.-]+$ ]]; then
        log "AZURE_FEDERATED_TOKEN_FILE ($AZURE_FEDERATED_TOKEN_FILE) does not hold a JWT"
        return 1
      fi
      credential="client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$credential"
      ;;
    sp)
      # Form-encoded through jq's stdin: a secret may hold any character, and never goes on argv.
      credential="client_secret=$(read_secret "$AZP_CLIENT_SECRET_FILE" | jq -Rrj @uri)"
      ;;
  esac
  local proxy_args=()
  [[ -z ${AZP_PROXY_URL:-} ]] || proxy_args=(--proxy "$AZP_PROXY_URL")
  # The form, credential included, goes through stdin: argv is readable by every process.
  response=$(printf 'grant_type=client_credentials&client_id=%s&scope=%s&%s' \
    "$AZP_CLIENT_ID" "$DEVOPS_RESOURCE%2F.default" "$credential" |
    curl --silent --show-error --proto =https --max-time 30 --retry 3 \
      "${curl_ca_args[@]}" "${proxy_args[@]}" \
      --header 'Content-Type: application/x-www-form-urlencoded' --data-binary @- \
      --write-out '\n%{http_code}' \
      "${AZURE_AUTHORITY_HOST%/}/$AZP_TENANT_ID/oauth2/v2.0/token") || {
    log "$(auth_label): could not reach ${AZURE_AUTHORITY_HOST%/}"
    return 1
  }
  status=${response##*$'\n'}
  body=${response%$'\n'*}
  token=$(jq -r '.access_token // empty' <<<"$body" 2>/dev/null || true)
  if [[ $status != 200 || -z $token ]]; then
    log "$(auth_label): Entra answered $status: $(jq -r '[.error, .error_description] | map(select(. != null)) | join(": ") | split("\r\n")[0] | split("\n")[0]' <<<"$body" 2>/dev/null || echo 'no error description')"
    return 1
  fi
  printf '%s' "$token"
}

auth_label() {
  case $AZP_AUTH in
    pat) echo "personal access token" ;;
    sp) echo "service principal" ;;
    workload-identity) echo "workload identity" ;;
  esac
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
# Cleanup (AZP_MODE=cleanup): agents whose pods died without deregistering stay in the pool as
# offline agents. This mode lists the pool's agents over the REST API (the calls KEDA's
# azure-pipelines scaler and the agent make, api-version 7.1) and deletes those offline for longer
# than AZP_CLEANUP_OFFLINE_MINUTES, except the placeholders named in AZP_PLACEHOLDER_AGENTS.

# The Authorization header for the REST API: Basic with the PAT as password (what a PAT is for),
# or a bearer Entra token for a service principal or workload identity.
devops_authorization() {
  local token
  case $AZP_AUTH in
    pat)
      printf 'Basic %s' "$(printf ':%s' "$(read_secret "$AZP_TOKEN_FILE")" | base64 -w0)"
      ;;
    *)
      token=$(entra_token) || return 1
      printf 'Bearer %s' "$token"
      ;;
  esac
}

# Calls the REST API and prints the answer's body; one log line and status 1 for anything but 2xx.
# The Authorization header reaches curl through its config on stdin, never through argv.
devops_api() { # <method> <url>
  local method=$1 url=$2 response status body
  local proxy_args=()
  [[ -z ${AZP_PROXY_URL:-} ]] || proxy_args=(--proxy "$AZP_PROXY_URL")
  response=$(printf 'header = "Authorization: %s"\n' "$authorization_header" |
    curl --silent --show-error --proto =https --max-time 30 --retry 3 --config - \
      "${curl_ca_args[@]}" "${proxy_args[@]}" \
      --request "$method" --header 'Accept: application/json' \
      --write-out '\n%{http_code}' "$url") || {
    log "cleanup: could not reach $AZP_URL"
    return 1
  }
  status=${response##*$'\n'}
  body=${response%$'\n'*}
  if [[ $status != 2?? ]]; then
    # Azure DevOps explains refusals in a JSON `message`; a sign-in page means the credential was refused.
    log "cleanup: $method ${url%%\?*} answered $status: $(jq -r '.message // empty | split("\n")[0]' <<<"$body" 2>/dev/null || echo 'not a JSON answer')"
    return 1
  fi
  printf '%s' "$body"
}

uri_component() { # <value>
  printf '%s' "$1" | jq -Rrj @uri
}

# Prints, tab-separated, `remove <id> <name> <offline since>` for each agent to delete and
# `unreadable <id> <name> <since>` for offline agents whose time stamp cannot be read (kept).
# An agent's offline time counts from `statusChangedOn`; `createdOn` stands in for an agent
# whose status never changed. Agents still holding a job request are left to Azure DevOps.
select_stale_agents() { # <agents JSON>
  jq -r --argjson now "$(date +%s)" --argjson limit "$((10#$AZP_CLEANUP_OFFLINE_MINUTES * 60))" \
    --arg keep "${AZP_PLACEHOLDER_AGENTS:-}" '
    ($keep | ascii_downcase | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(. != ""))) as $placeholders
    | .value[]
    | select(.status == "offline" and .assignedRequest == null)
    | select(.name | ascii_downcase | IN($placeholders[]) | not)
    | (.statusChangedOn // .createdOn // "") as $since
    | (try ($since | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) catch null) as $offlineSince
    | if $offlineSince == null then ["unreadable", (.id | tostring), .name, $since]
      elif $now - $offlineSince > $limit then ["remove", (.id | tostring), .name, $since]
      else empty end
    | @tsv' <<<"$1"
}

run_cleanup() {
  local pools pool_id agents kind id name since removed=0 failed=0
  log "cleanup: removing agents of pool '$AZP_POOL' at $AZP_URL offline for more than ${AZP_CLEANUP_OFFLINE_MINUTES} minutes ($(auth_label))"
  authorization_header=$(devops_authorization) || exit 1
  pools=$(devops_api GET "$AZP_URL/_apis/distributedtask/pools?poolName=$(uri_component "$AZP_POOL")&api-version=7.1") || exit 1
  pool_id=$(jq -r '.value[0].id // empty' <<<"$pools")
  if [[ -z $pool_id ]]; then
    log "cleanup: agent pool '$AZP_POOL' does not exist at $AZP_URL (or this identity may not see it): check AZP_POOL"
    exit 1
  fi
  agents=$(devops_api GET "$AZP_URL/_apis/distributedtask/pools/$pool_id/agents?includeAssignedRequest=true&api-version=7.1") || exit 1
  if ! jq -e '.value | type == "array"' <<<"$agents" >/dev/null 2>&1; then
    log "cleanup: the agent list of pool '$AZP_POOL' is not the JSON Azure DevOps sends (a proxy's page?): nothing removed"
    exit 1
  fi
  while IFS=$'\t' read -r kind id name since; do
    case $kind in
      unreadable)
        log "cleanup: kept agent '$name' (id $id): its offline time '$since' is not an ISO 8601 UTC time"
        ;;
      remove)
        if devops_api DELETE "$AZP_URL/_apis/distributedtask/pools/$pool_id/agents/$id?api-version=7.1" >/dev/null; then
          log "cleanup: removed agent '$name' (id $id), offline since $since"
          removed=$((removed + 1))
        else
          failed=$((failed + 1))
        fi
        ;;
    esac
  done < <(select_stale_agents "$agents")
  log "cleanup: $removed $( ((removed == 1)) && echo agent || echo agents) removed$( ((failed == 0)) || printf ', %d could not be' "$failed")"
  ((failed == 0)) || exit 1
  exit 0
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

# Ephemeral agents KEDA started for a job that another agent took would wait forever. Returns 0
# once AZP_IDLE_TIMEOUT_SECONDS passed without a job starting; 1 as soon as a job starts, the
# listener ends or a stop is requested (the caller then waits for the listener as usual).
idle_timed_out() {
  local deadline=$((SECONDS + 10#$AZP_IDLE_TIMEOUT_SECONDS))
  while process_running "$listener_pid" && [[ -z $stop_requested ]]; do
    job_running && return 1
    ((SECONDS < deadline)) || return 0
    sleep 0.5
  done
  return 1
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
  trap 'rm -f "${ca_bundle:-}"' EXIT
  trap 'on_stop_signal SIGTERM' TERM
  trap 'on_stop_signal SIGINT' INT
  prepare_ca_bundle
  [[ $AZP_MODE != cleanup ]] || run_cleanup
  cd "$AZP_AGENT_DIR"
  # Nothing that names a credential source becomes a capability: the agent reports its environment
  # as capabilities when it registers (config.sh) and each time the listener starts.
  export VSO_AGENT_IGNORE="${VSO_AGENT_IGNORE:+$VSO_AGENT_IGNORE,}AZP_TOKEN_FILE,AZP_CLIENT_SECRET_FILE,AZP_CLIENT_ID,AZP_TENANT_ID,AZURE_FEDERATED_TOKEN_FILE,AZURE_CLIENT_ID,AZURE_TENANT_ID"

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

  local status=0 deadline idle=
  if [[ -z $stop_requested ]]; then
    start_listener
    if ((10#$AZP_IDLE_TIMEOUT_SECONDS > 0)) && idle_timed_out; then
      idle=true
      log "no job within ${AZP_IDLE_TIMEOUT_SECONDS}s: stopping the listener"
      stop_listener
    else
      wait_for "$listener_pid" stop-aware || status=$?
    fi
  fi
  deadline=$((SECONDS + AZP_DRAIN_TIMEOUT))
  if [[ -n $stop_requested ]]; then
    [[ -z $listener_pid ]] || drain "$deadline"
    status=0
  elif [[ -z $idle ]]; then
    log "listener exited with status $status"
  fi
  deregister "$deadline" || status=1
  exit "$status"
}

main "$@"
