output "deployment_id" {
  description = "perdure's id (dp_...) of the registered version (or alias)."
  value       = local.deployment.id
}

output "registered_arn" {
  description = "The qualified ARN registered with perdure (the version, or the alias with register = \"alias\")."
  value       = local.registered_arn
}

output "function_version" {
  description = "The Lambda version this apply published."
  value       = aws_lambda_function.this.version
}

output "alias_arn" {
  description = "ARN of the alias, now at function_version."
  value       = aws_lambda_alias.this.arn
}

output "services" {
  description = "The services perdure discovered in the deployment."
  value       = [for s in local.deployment.services : s.name]
}

output "function_arn" {
  description = "The function's unqualified ARN (grant lambda:InvokeFunction on it and on \"<arn>:*\")."
  value       = aws_lambda_function.this.arn
}
