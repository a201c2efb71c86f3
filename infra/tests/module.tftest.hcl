# `terraform test` (Terraform >= 1.7) from infra/: plans the module with mocked providers and
# checks the variable validations and the registration's wiring. Plans only: an apply would run
# the provisioners, which need a real perdure (perdure's own tests run those scripts, see
# ../README.md).

mock_provider "aws" {
  mock_resource "aws_lambda_function" {
    defaults = {
      arn           = "arn:aws:lambda:eu-central-1:123456789012:function:greeter"
      qualified_arn = "arn:aws:lambda:eu-central-1:123456789012:function:greeter:7"
      version       = "7"
    }
  }
  mock_resource "aws_lambda_alias" {
    defaults = {
      arn = "arn:aws:lambda:eu-central-1:123456789012:function:greeter:live"
    }
  }
}

mock_provider "http" {}

variables {
  function_name      = "greeter"
  filename           = "README.md" # any file: only its hash is used in a plan
  execution_role_arn = "arn:aws:iam::123456789012:role/greeter"
  perdure_admin_url  = "http://127.0.0.1:9070"
}

run "publishes_a_version_and_registers_it" {
  command = plan

  assert {
    condition     = aws_lambda_function.this.publish == true
    error_message = "every code change must publish a new version"
  }
  assert {
    condition     = aws_lambda_alias.this.name == "live"
    error_message = "the alias defaults to live"
  }
}

run "ramp_out_of_range" {
  command = plan
  variables {
    ramp_percent = 150
  }
  expect_failures = [var.ramp_percent]
}

run "register_must_be_version_or_alias" {
  command = plan
  variables {
    register = "function"
  }
  expect_failures = [var.register]
}

run "retire_timeout_is_a_duration" {
  command = plan
  variables {
    retire_timeout = "soon"
  }
  expect_failures = [var.retire_timeout]
}

run "admin_url_is_http" {
  command = plan
  variables {
    perdure_admin_url = "perdure.internal:9070"
  }
  expect_failures = [var.perdure_admin_url]
}
