terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
    # Reads the deployment id back from perdure's admin API (GET /deployments) for the output.
    http = {
      source  = "hashicorp/http"
      version = ">= 3.4"
    }
  }
}
