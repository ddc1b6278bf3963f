# shellcheck shell=bash
# Shared by the fake agent's scripts (sourced, not run). The fake stands in for the Azure Pipelines
# agent package in tests of agent-image/start.sh; two directories given by env hold its state:
#   FAKE_AGENT_LOG_DIR  what the agent processes saw and did: events.log (one event a line,
#                       "<epoch ms> <event> <details>"), config.jsonl (one record per config.sh run),
#                       worker-<job>.environ (the environment each job ran with);
#   FAKE_AZDO_DIR       the Azure DevOps side: agents/<name> (registered agents) and queue/<id>.job
#                       (a job waiting for an agent; the file holds its length in seconds).
# shellcheck disable=SC2034 # used by the scripts that source this file
agent_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${FAKE_AGENT_LOG_DIR:?FAKE_AGENT_LOG_DIR must name the fake agent log directory}"
: "${FAKE_AZDO_DIR:?FAKE_AZDO_DIR must name the fake Azure DevOps state directory}"
mkdir -p "$FAKE_AGENT_LOG_DIR" "$FAKE_AZDO_DIR/agents" "$FAKE_AZDO_DIR/queue"

event() {
  printf '%s %s\n' "$(date +%s%3N)" "$*" >>"$FAKE_AGENT_LOG_DIR/events.log"
}

die() {
  event "error $*"
  echo "$*" >&2
  exit 1
}
