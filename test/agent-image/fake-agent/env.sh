#!/bin/bash
# Fake env.sh: like the real one, config.sh runs it to capture the PATH and a few well-known
# variables (.path, .env) that the agent reports as capabilities.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
printf '%s\n' "$PATH" >.path
: >.env
for name in LANG JAVA_HOME ANT_HOME M2_HOME ANDROID_HOME GRADLE_HOME NVM_BIN NVM_PATH LD_LIBRARY_PATH PERL5LIB; do
  if [[ -n ${!name:-} ]]; then printf '%s=%s\n' "$name" "${!name}" >>.env; fi
done
