#!/bin/bash
# Fake config.sh with the real agent's command line: `config.sh [remove] --unattended --url … --auth
# PAT|SP --token … | --clientid … --tenantid … --clientsecret … --pool … --agent … --work … --replace
# --acceptTeeEula [--proxyurl …] [--sslcacert …]`, where any option may come from
# VSTS_AGENT_INPUT_<NAME> instead (read, then dropped, as the real agent does). It records each run
# in config.jsonl with secrets only as SHA-256 and names any secret that arrived on the command line,
# together with the capabilities the agent would report: its environment minus the names in
# VSO_AGENT_IGNORE, plus Agent.Name, Agent.OS and Agent.Version.
# FAKE_AGENT_REMOVE_FAILURES=<n> makes the first n removals fail, as a flaky service would.
# FAKE_AZDO_HTTP=true also registers and removes the agent at --url over Azure DevOps' REST API
# (pools?poolName=, POST/PUT/DELETE pools/<id>/agents) with the token as a PAT, trusting
# --sslcacert, as the real agent does; test/env/devopsAgents.ts is the server it talks to.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR source=bin/fake-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bin/fake-lib.sh"
cd "$agent_root"

readonly value_options=" url auth token pool agent work clientid tenantid clientsecret proxyurl sslcacert "
readonly flag_options=" unattended replace acceptteeeula "
readonly secret_options=" token clientsecret "

command=configure
if [[ ${1:-} == remove ]]; then
  command=remove
  shift
fi

declare -A options=()
masked_argv=()
secrets_on_command_line=()
while (($#)); do
  name=${1#--}
  name=${name,,}
  if [[ $1 == --* && $flag_options == *" $name "* ]]; then
    options[$name]=true
    masked_argv+=("$1")
    shift
  elif [[ $1 == --* && $value_options == *" $name "* && $# -ge 2 ]]; then
    options[$name]=$2
    if [[ $secret_options == *" $name "* ]]; then
      secrets_on_command_line+=("$name")
      masked_argv+=("$1" '***')
    else
      masked_argv+=("$1" "$2")
    fi
    shift 2
  else
    die "Unrecognized command-line input arguments: '$1'"
  fi
done

env_inputs=()
for variable in $(compgen -e); do
  [[ $variable == VSTS_AGENT_INPUT_* ]] || continue
  name=${variable#VSTS_AGENT_INPUT_}
  name=${name,,}
  env_inputs+=("$name")
  [[ -n ${options[$name]:-} ]] || options[$name]=${!variable}
  unset "$variable"
done

readonly agent_version=4.264.2

# The capabilities the real agent reports: every environment variable (names with dots included,
# which bash cannot list, hence jq's $ENV) except those VSO_AGENT_IGNORE names, and its own.
capabilities() { # <agent name>
  jq -nc --arg name "$1" --arg version "$agent_version" '
    (($ENV.VSO_AGENT_IGNORE // "") | split(",") | map(select(. != ""))) as $ignored
    | ($ENV | with_entries(select(.key as $key | $ignored | index($key) | not)))
      + {"Agent.Name": $name, "Agent.OS": "Linux", "Agent.Version": $version}'
}

sha256_of() { # <value>: printf is a builtin, so the value never reaches a command line
  if [[ -z $1 ]]; then return 0; fi
  printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

record() { # <result>
  jq -nc --arg command "$command" --arg result "$1" --arg uid "$EUID" \
    --arg auth "${options[auth]:-}" --arg url "${options[url]:-}" --arg pool "${options[pool]:-}" \
    --arg agent "${options[agent]:-}" --arg work "${options[work]:-}" --arg replace "${options[replace]:-false}" \
    --arg clientId "${options[clientid]:-}" --arg tenantId "${options[tenantid]:-}" \
    --arg proxyUrl "${options[proxyurl]:-}" --arg sslCaCert "${options[sslcacert]:-}" \
    --arg tokenSha256 "$(sha256_of "${options[token]:-}")" \
    --arg clientSecretSha256 "$(sha256_of "${options[clientsecret]:-}")" \
    --argjson argv "$(printf '%s\n' "${masked_argv[@]}" | jq -R . | jq -sc .)" --arg onCommandLine "${secrets_on_command_line[*]}" --arg envInputs "${env_inputs[*]}" \
    --argjson capabilities "$(capabilities "${options[agent]:-}")" \
    '{command: $command, result: $result, uid: ($uid | tonumber), auth: $auth, url: $url, pool: $pool,
      agent: $agent, work: $work, replace: ($replace == "true"), clientId: $clientId, tenantId: $tenantId,
      proxyUrl: $proxyUrl, sslCaCert: $sslCaCert, tokenSha256: $tokenSha256, clientSecretSha256: $clientSecretSha256,
      argv: $argv, secretsOnCommandLine: ($onCommandLine | split(" ") | map(select(. != ""))),
      envInputs: ($envInputs | split(" ") | map(select(. != ""))), capabilities: $capabilities}' >>"$FAKE_AGENT_LOG_DIR/config.jsonl"
}

refuse() { # <message>
  record "refused: $*"
  die "$*"
}

# The real agent refuses to configure as root unless told otherwise.
((EUID != 0)) || [[ -n ${AGENT_ALLOW_RUNASROOT:-} ]] || refuse "Must not run with sudo"
[[ ${options[unattended]:-} == true ]] || refuse "the fake agent supports only --unattended"

require() { # <option>...
  local option
  for option in "$@"; do
    [[ -n ${options[$option]:-} ]] || refuse "--$option is required in unattended mode"
  done
}

case ${options[auth]:-} in
  [Pp][Aa][Tt]) require token ;;
  [Ss][Pp]) require clientid tenantid clientsecret ;;
  *) refuse "--auth must be PAT or SP, got '${options[auth]:-}'" ;;
esac

# Azure DevOps' REST API at --url, authenticated with the token as a PAT (Basic, given to curl
# through its config on stdin); prints the answer's body, refuses on any status but 2xx.
devops() { # <method> <path and query> [JSON body]
  local response status ca_args=() body_args=()
  [[ -z ${options[sslcacert]:-} ]] || ca_args=(--cacert "${options[sslcacert]}")
  [[ -z ${3:-} ]] || body_args=(--data-binary "$3")
  response=$(printf 'header = "Authorization: Basic %s"\n' "$(printf ':%s' "${options[token]}" | base64 -w0)" |
    curl --silent --show-error --config - "${ca_args[@]}" --request "$1" \
      --header 'Content-Type: application/json' "${body_args[@]}" \
      --write-out '\n%{http_code}' "${options[url]%/}/_apis/distributedtask/$2") || refuse "cannot reach ${options[url]}"
  status=${response##*$'\n'}
  [[ $status == 2?? ]] || refuse "Azure DevOps answered $status to $1 $2: ${response%$'\n'*}"
  printf '%s' "${response%$'\n'*}"
}

http_pool_id() {
  local id
  id=$(devops GET "pools?poolName=$(printf '%s' "${options[pool]}" | jq -Rrj @uri)" | jq -r '.value[0].id // empty')
  [[ -n $id ]] || refuse "Agent pool ${options[pool]} not found"
  printf '%s' "$id"
}

if [[ ${FAKE_AZDO_HTTP:-} == true && ! ${options[auth]:-} =~ ^[Pp][Aa][Tt]$ ]]; then
  refuse "the fake agent registers over HTTP with --auth PAT only"
fi

if [[ $command == remove ]]; then
  [[ -f .agent ]] || refuse "the agent is not configured"
  name=$(jq -r .agentName .agent)
  # `remove` takes the server and its trust from the registration, as the real agent does.
  options[url]=$(jq -r .serverUrl .agent)
  options[sslcacert]=$(jq -r .sslCaCert .agent)
  attempts=$(($(cat "$FAKE_AZDO_DIR/remove-attempts" 2>/dev/null || echo 0) + 1))
  echo "$attempts" >"$FAKE_AZDO_DIR/remove-attempts"
  ((attempts > ${FAKE_AGENT_REMOVE_FAILURES:-0})) || refuse "simulated service failure on removal attempt $attempts"
  # Azure DevOps will not delete an agent that is running a job.
  if [[ -f .job ]] && kill -0 "$(cat .job)" 2>/dev/null; then
    refuse "the agent is running a job and cannot be removed"
  fi
  if [[ ${FAKE_AZDO_HTTP:-} == true ]]; then
    devops DELETE "pools/$(jq -r .poolId .agent)/agents/$(jq -r .agentId .agent)?api-version=7.1" >/dev/null
  fi
  rm -f "$FAKE_AZDO_DIR/agents/$name" .agent .credentials .env .path .proxy
  record ok
  event "removed $name"
  exit 0
fi

require url pool agent
[[ ! -f .agent ]] || refuse "Cannot configure the agent because it is already configured. To reconfigure the agent, run 'config.cmd remove' or './config.sh remove' first."
name=${options[agent]}
if [[ -e $FAKE_AZDO_DIR/agents/$name && ${options[replace]:-} != true ]]; then
  refuse "Pool ${options[pool]} already contains an agent with name $name"
fi
./env.sh
pool_id=0 agent_id=0
if [[ ${FAKE_AZDO_HTTP:-} == true ]]; then
  pool_id=$(http_pool_id)
  body=$(jq -nc --arg name "$name" --arg version "$agent_version" --argjson capabilities "$(capabilities "$name")" \
    '{name: $name, version: $version, osDescription: "Linux (fake agent)", enabled: true, systemCapabilities: $capabilities}')
  existing=$(devops GET "pools/$pool_id/agents?agentName=$(printf '%s' "$name" | jq -Rrj @uri)" | jq -r '.value[0].id // empty')
  if [[ -z $existing ]]; then
    agent_id=$(devops POST "pools/$pool_id/agents?api-version=7.1" "$body" | jq -r .id)
  elif [[ ${options[replace]:-} == true ]]; then
    agent_id=$(devops PUT "pools/$pool_id/agents/$existing?api-version=7.1" "$(jq -c --argjson id "$existing" '. + {id: $id}' <<<"$body")" | jq -r .id)
  else
    refuse "Pool ${options[pool]} already contains an agent with name $name"
  fi
fi
jq -n --arg agentName "$name" --arg poolName "${options[pool]}" --arg serverUrl "${options[url]}" \
  --arg workFolder "${options[work]:-_work}" --argjson poolId "$pool_id" --argjson agentId "$agent_id" \
  --arg sslCaCert "${options[sslcacert]:-}" '{$agentName, $poolName, $serverUrl, $workFolder, $poolId, $agentId, $sslCaCert}' >.agent
echo '{"scheme": "OAuth"}' >.credentials
if [[ -n ${options[proxyurl]:-} ]]; then printf '%s' "${options[proxyurl]}" >.proxy; fi
printf '%s\n' "${options[pool]}" >"$FAKE_AZDO_DIR/agents/$name"
record ok
event "configured $name"
