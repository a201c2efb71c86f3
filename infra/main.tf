# Publishes a Lambda version, moves an alias to it, registers it with perdure, ramps or promotes
# it, and retires the versions it superseded once they have drained. The perdure steps run the
# `perdure` CLI (scripts/*.sh) from terraform_data provisioners: no provider beyond aws (and
# http, to read the deployment id back).

locals {
  source_code_hash = var.source_code_hash != null ? var.source_code_hash : filebase64sha256(var.filename)
  # What perdure registers: the published version (one deployment per version) or the alias.
  registered_arn = var.register == "version" ? aws_lambda_function.this.qualified_arn : aws_lambda_alias.this.arn
  perdure_env = {
    PERDURE_CLI            = var.perdure_cli
    PERDURE_ADMIN_URL      = var.perdure_admin_url
    PERDURE_AUTH_TOKEN     = var.perdure_auth_token == null ? "" : var.perdure_auth_token
    PERDURE_RETIRE_TIMEOUT = var.retire_timeout
  }
}

resource "aws_lambda_function" "this" {
  function_name    = var.function_name
  role             = var.execution_role_arn
  filename         = var.filename
  source_code_hash = local.source_code_hash
  handler          = var.handler
  runtime          = var.runtime
  architectures    = var.architectures
  memory_size      = var.memory_size
  timeout          = var.timeout
  # Every code change publishes a new, immutable version: what perdure pins invocations to.
  publish = true

  dynamic "environment" {
    for_each = length(var.environment) > 0 ? [var.environment] : []
    content {
      variables = environment.value
    }
  }
}

resource "aws_lambda_alias" "this" {
  name             = var.alias_name
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version
}

# One registration per registered ARN: a new version replaces it, the new one registered
# before the old one is retired (create_before_destroy), so there is never a moment without one.
resource "terraform_data" "registration" {
  triggers_replace = [local.registered_arn]
  # What the destroy-time provisioner needs (it may only read self).
  input = merge(local.perdure_env, { PERDURE_ARN = local.registered_arn })

  lifecycle {
    create_before_destroy = true
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = "${path.module}/scripts/register.sh"
    environment = merge(local.perdure_env, {
      PERDURE_ARN             = local.registered_arn
      PERDURE_ASSUME_ROLE_ARN = var.invoke_role_arn == null ? "" : var.invoke_role_arn
      PERDURE_BREAKING        = tostring(var.breaking)
    })
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    command     = "${path.module}/scripts/retire.sh"
    environment = self.input
  }
}

# Where new invocations go: runs again when the registration or the ramp changes, so one apply
# can ramp a new version to 10% and a later one (ramp_percent = null) promote it.
resource "terraform_data" "routing" {
  triggers_replace = [terraform_data.registration.id, var.ramp_percent]

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = "${path.module}/scripts/routing.sh"
    environment = merge(local.perdure_env, {
      PERDURE_ARN          = local.registered_arn
      PERDURE_BREAKING     = tostring(var.breaking)
      PERDURE_RAMP_PERCENT = var.ramp_percent == null ? "" : tostring(var.ramp_percent)
      PERDURE_RETIRE       = tostring(var.retire)
    })
  }
}

# The deployment perdure made of it, read back from its admin API.
data "http" "deployments" {
  url             = "${trimsuffix(var.perdure_admin_url, "/")}/deployments"
  request_headers = var.perdure_auth_token == null ? { Accept = "application/json" } : { Accept = "application/json", Authorization = "Bearer ${var.perdure_auth_token}" }
  depends_on      = [terraform_data.routing]
}

locals {
  deployment = one([for d in jsondecode(data.http.deployments.response_body).deployments : d if try(d.arn, "") == local.registered_arn])
}
