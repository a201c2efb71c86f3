# --- the function ---------------------------------------------------------------------------

variable "function_name" {
  description = "Name of the Lambda function this module creates and publishes a version of on every code change."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 letters, digits, '-' or '_'."
  }
}

variable "filename" {
  description = "Path of the zip with the function's bundled code (a Restate SDK Lambda handler)."
  type        = string
}

variable "source_code_hash" {
  description = "Base64 SHA-256 of the zip (filebase64sha256(filename)): a new hash publishes a new version. Null computes it from filename."
  type        = string
  default     = null
}

variable "handler" {
  description = "The function's handler, e.g. index.handler."
  type        = string
  default     = "index.handler"
}

variable "runtime" {
  description = "The Lambda runtime."
  type        = string
  default     = "nodejs22.x"
}

variable "architectures" {
  description = "Instruction set: [\"arm64\"] or [\"x86_64\"]."
  type        = list(string)
  default     = ["arm64"]
  validation {
    condition     = length(var.architectures) == 1 && contains(["arm64", "x86_64"], var.architectures[0])
    error_message = "architectures must be [\"arm64\"] or [\"x86_64\"]."
  }
}

variable "execution_role_arn" {
  description = "ARN of the role the function runs as."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+", var.execution_role_arn))
    error_message = "execution_role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (128-10240)."
  type        = number
  default     = 512
  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be from 128 to 10240 MB."
  }
}

variable "timeout" {
  description = "The function's timeout in seconds (1-900): the longest one attempt may run."
  type        = number
  default     = 60
  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be from 1 to 900 seconds."
  }
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "alias_name" {
  description = "The alias this module moves to every new version."
  type        = string
  default     = "live"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.alias_name)) && !can(regex("^[0-9]+$", var.alias_name))
    error_message = "alias_name must be letters, digits, '-' or '_', and not only digits."
  }
}

# --- perdure ---------------------------------------------------------------------------------

variable "perdure_admin_url" {
  description = "perdure's admin API as the machine running Terraform reaches it, e.g. https://perdure.internal:9070."
  type        = string
  validation {
    condition     = can(regex("^https?://[^/]+", var.perdure_admin_url))
    error_message = "perdure_admin_url must be an http:// or https:// URL."
  }
}

variable "perdure_auth_token" {
  description = "One of perdure's admin.auth-tokens (needed when its admin API is bound beyond loopback)."
  type        = string
  default     = null
  sensitive   = true
}

variable "perdure_cli" {
  description = "The perdure binary on the machine running Terraform (the provisioners run `perdure dp …`)."
  type        = string
  default     = "perdure"
}

variable "register" {
  description = "What perdure registers: \"version\" (each published version is its own deployment, superseded ones retired once drained) or \"alias\" (the alias ARN: perdure pins each invocation to the version that ran and checks every version the alias moves to)."
  type        = string
  default     = "version"
  validation {
    condition     = contains(["version", "alias"], var.register)
    error_message = "register must be \"version\" or \"alias\"."
  }
}

variable "invoke_role_arn" {
  description = "A role perdure assumes to invoke the function (assume_role_arn); null uses perdure's own credentials."
  type        = string
  default     = null
  validation {
    condition     = var.invoke_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+", var.invoke_role_arn))
    error_message = "invoke_role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)."
  }
}

variable "ramp_percent" {
  description = "Send only this share (1-99) of new invocations to the new version (a canary; objects and workflows by key) instead of promoting it. Null promotes."
  type        = number
  default     = null
  validation {
    condition     = var.ramp_percent == null || (floor(coalesce(var.ramp_percent, 0)) == coalesce(var.ramp_percent, 0) && coalesce(var.ramp_percent, 0) >= 1 && coalesce(var.ramp_percent, 0) <= 99)
    error_message = "ramp_percent must be a whole number from 1 to 99, or null to promote."
  }
}

variable "breaking" {
  description = "Accept a version perdure reports as breaking (removed handlers with pending work, kind or type changes)."
  type        = bool
  default     = false
}

variable "retire_timeout" {
  description = "How long replacing a version waits for the superseded one to drain before removing it (a Go-style duration: 30m, 2h). Past it the apply fails and the next apply waits again; nothing pinned is ever removed."
  type        = string
  default     = "30m"
  validation {
    condition     = can(regex("^([0-9]+(ms|s|m|h))+$", var.retire_timeout))
    error_message = "retire_timeout must be a duration such as 90s, 30m or 1h30m."
  }
}

variable "retire" {
  description = "After promoting a version, retire the versions of this function it superseded once each has drained (nothing pinned is ever removed)."
  type        = bool
  default     = true
}
