#!/usr/bin/env bash
# Retires one registered version when Terraform replaces or destroys its registration: waits
# until nothing is pinned to it, then removes it. A version still routed to (active) is left
# registered and one already gone is fine. Run by the module's destroy-time provisioner, and as
# is by perdure's tests. Environment: PERDURE_CLI, PERDURE_ADMIN_URL, PERDURE_AUTH_TOKEN (may
# be empty), PERDURE_ARN, PERDURE_RETIRE_TIMEOUT (e.g. 30m)
set -euo pipefail
[ -n "${PERDURE_AUTH_TOKEN:-}" ] || unset PERDURE_AUTH_TOKEN
exec "$PERDURE_CLI" dp retire "$PERDURE_ARN" --timeout "${PERDURE_RETIRE_TIMEOUT:-30m}"
