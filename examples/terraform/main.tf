# A Restate SDK Lambda function registered with perdure on every apply that changes its code:
#
#   terraform apply -var perdure_admin_url=https://perdure.internal:9070 -var ramp_percent=10   # canary
#   terraform apply -var perdure_admin_url=https://perdure.internal:9070                        # promote, retire drained
#
# The machine running Terraform needs the `perdure` binary (the module's provisioners run
# `perdure dp …`) and, when perdure's admin API is bound beyond loopback, one of its tokens:
# TF_VAR_perdure_auth_token.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws     = { source = "hashicorp/aws", version = ">= 5.0" }
    archive = { source = "hashicorp/archive", version = ">= 2.4" }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region of the function."
  type        = string
  default     = "eu-central-1"
}

variable "perdure_admin_url" {
  description = "perdure's admin API, e.g. https://perdure.internal:9070."
  type        = string
}

variable "perdure_auth_token" {
  description = "One of perdure's admin.auth-tokens."
  type        = string
  default     = null
  sensitive   = true
}

variable "ramp_percent" {
  description = "Canary share (1-99) for the new version; null promotes it."
  type        = number
  default     = null
}

variable "perdure_role_arn" {
  description = "The IAM identity perdure runs as (it assumes the invoker role below)."
  type        = string
}

data "archive_file" "greeter" {
  type        = "zip"
  source_dir  = "${path.module}/../cdk/service"
  output_path = "${path.module}/greeter.zip"
}

resource "aws_iam_role" "greeter" {
  name = "greeter-lambda"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "lambda.amazonaws.com" } }]
  })
}

resource "aws_iam_role_policy_attachment" "greeter_logs" {
  role       = aws_iam_role.greeter.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

# The role perdure assumes to invoke every version of the function.
resource "aws_iam_role" "perdure_invoker" {
  name = "perdure-invokes-greeter"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = var.perdure_role_arn } }]
  })
}

data "aws_caller_identity" "current" {}

locals {
  # By name, so the grant exists before the module registers the first version.
  function_arn = "arn:aws:lambda:${var.region}:${data.aws_caller_identity.current.account_id}:function:greeter"
}

resource "aws_iam_role_policy" "perdure_invoker" {
  role = aws_iam_role.perdure_invoker.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "lambda:InvokeFunction", Resource = [local.function_arn, "${local.function_arn}:*"] }]
  })
}

module "greeter" {
  source = "../../infra"

  function_name      = "greeter"
  filename           = data.archive_file.greeter.output_path
  source_code_hash   = data.archive_file.greeter.output_base64sha256
  execution_role_arn = aws_iam_role.greeter.arn

  perdure_admin_url  = var.perdure_admin_url
  perdure_auth_token = var.perdure_auth_token
  invoke_role_arn    = aws_iam_role.perdure_invoker.arn
  ramp_percent       = var.ramp_percent
  retire_timeout     = "20m"

  # perdure discovers the services of each version by invoking it: the grant comes first.
  depends_on = [aws_iam_role_policy.perdure_invoker]
}

output "deployment_id" {
  value = module.greeter.deployment_id
}

output "function_version" {
  value = module.greeter.function_version
}
