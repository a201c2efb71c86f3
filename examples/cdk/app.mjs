// A Lambda function registered with perdure on every deploy: each `cdk deploy` publishes a new
// version (`fn.currentVersion` changes with the code), registers it, and either ramps it
// (`-c rampPercent=10`, after a smoke test) or promotes it; superseded versions are retired
// once perdure reports them drained, keeping the newest one for a quick rollback.
//
//   npx cdk deploy -c adminUrl=https://perdure.internal:9070 -c rampPercent=10   # canary
//   npx cdk deploy -c adminUrl=https://perdure.internal:9070                     # promote
import { App, CfnOutput, Duration, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { PerdureDeployment } from "@perdure/cdk";

const app = new App();
const context = (name, fallback) => app.node.tryGetContext(name) ?? fallback;
const stack = new Stack(app, "GreeterService");

const fn = new lambda.Function(stack, "Greeter", {
  runtime: lambda.Runtime.NODEJS_22_X,
  architecture: lambda.Architecture.ARM_64,
  code: lambda.Code.fromAsset(new URL("./service", import.meta.url).pathname),
  handler: "index.handler",
  timeout: Duration.minutes(1),
});

// The role perdure assumes to invoke the function (perdure's own AWS identity must be allowed
// to assume it); the construct grants it lambda:InvokeFunction on every version.
const invokeRole = new iam.Role(stack, "PerdureInvoker", {
  assumedBy: new iam.ArnPrincipal(context("perdureRoleArn", `arn:aws:iam::${stack.account}:root`)),
});
// One of perdure's admin.auth-tokens, stored as a plain-text secret.
const authTokenSecret = secretsmanager.Secret.fromSecretNameV2(stack, "AdminToken", context("tokenSecret", "perdure/admin-token"));

const rampPercent = context("rampPercent") === undefined ? undefined : Number(context("rampPercent"));
const perdure = new PerdureDeployment(stack, "Perdure", {
  adminUrl: context("adminUrl", "https://perdure.internal:9070"),
  ingressUrl: context("ingressUrl", "https://perdure.internal:8080"),
  function: fn.currentVersion,
  invokeRole,
  authTokenSecret,
  smokeTest: rampPercent === undefined ? undefined : { service: "Greeter", handler: "greet", body: "smoke", expect: "Hello, smoke!" },
  ramp: rampPercent === undefined ? undefined : { percent: rampPercent },
  retire: { keep: 1, waitForDrain: Duration.minutes(20) },
});

new CfnOutput(stack, "DeploymentId", { value: perdure.deploymentId });
new CfnOutput(stack, "Retired", { value: perdure.retired });
new CfnOutput(stack, "Draining", { value: perdure.draining });
