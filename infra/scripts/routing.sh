#!/usr/bin/env bash
# Moves new invocations to the registered deployment: a ramp (a share of them, a canary) when
# PERDURE_RAMP_PERCENT is set, else a promotion followed by retiring the versions it
# superseded once each has drained (never one that work is still pinned to). Run by the
# module's terraform_data.routing provisioner, and as is by perdure's tests. Environment:
#   PERDURE_CLI, PERDURE_ADMIN_URL, PERDURE_AUTH_TOKEN (may be empty), PERDURE_ARN,
#   PERDURE_BREAKING (true|false), PERDURE_RAMP_PERCENT (1-99, or empty to promote),
#   PERDURE_RETIRE (true|false), PERDURE_RETIRE_TIMEOUT (e.g. 30m)
set -euo pipefail
[ -n "${PERDURE_AUTH_TOKEN:-}" ] || unset PERDURE_AUTH_TOKEN
breaking=()
if [ "${PERDURE_BREAKING:-false}" = true ]; then breaking=(--breaking); fi
if [ -n "${PERDURE_RAMP_PERCENT:-}" ]; then
  exec "$PERDURE_CLI" dp ramp "$PERDURE_ARN" --percent "$PERDURE_RAMP_PERCENT" "${breaking[@]}"
fi
"$PERDURE_CLI" dp promote "$PERDURE_ARN" "${breaking[@]}"
if [ "${PERDURE_RETIRE:-true}" = true ]; then
  exec "$PERDURE_CLI" dp retire "$PERDURE_ARN" --superseded --timeout "${PERDURE_RETIRE_TIMEOUT:-30m}"
fi
