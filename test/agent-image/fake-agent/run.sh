#!/bin/bash
# Fake run.sh: like the real one, runs the listener with the arguments given (--once: one job).
set -Eeuo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/bin/Agent.Listener" run "$@"
