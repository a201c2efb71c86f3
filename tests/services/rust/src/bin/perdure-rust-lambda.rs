//! The Rust SDK test services as an AWS Lambda function (the SDK's Lambda handler, on
//! `lambda_runtime`): run it under the Lambda Runtime API.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    restate_sdk::lambda::LambdaEndpoint::run(perdure_rust_services::endpoint()).await
}
