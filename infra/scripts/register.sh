#!/usr/bin/env bash
# Registers one published Lambda version (or the alias) with perdure without moving any
# traffic to it yet (routing.sh does that). Run by the module's terraform_data.registration
# provisioner, and as is by perdure's tests. Environment (set by the module):
#   PERDURE_CLI, PERDURE_ADMIN_URL, PERDURE_AUTH_TOKEN (may be empty), PERDURE_ARN,
#   PERDURE_ASSUME_ROLE_ARN (may be empty), PERDURE_BREAKING (true|false)
set -euo pipefail
[ -n "${PERDURE_AUTH_TOKEN:-}" ] || unset PERDURE_AUTH_TOKEN
args=(dp add "$PERDURE_ARN" --no-promote)
if [ -n "${PERDURE_ASSUME_ROLE_ARN:-}" ]; then args+=(--assume-role-arn "$PERDURE_ASSUME_ROLE_ARN"); fi
if [ "${PERDURE_BREAKING:-false}" = true ]; then args+=(--breaking); fi
# A retried apply registers the same version again: perdure answers that it is already
# registered with the same services, which is fine.
exec "$PERDURE_CLI" "${args[@]}"
