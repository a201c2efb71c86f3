// The construct as CloudFormation sees it: `Template.fromStack` assertions on the resources it
// synthesizes, its validation, and the example app under examples/cdk through the real
// `cdk synth`. Run with `npm test` (after `npm install`, which compiles src/ into lib/).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { App, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { PerdureDeployment } from "../lib/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const cdkDir = join(here, "..");

function stackWithFunction() {
  const stack = new Stack(new App(), "Test");
  const fn = new lambda.Function(stack, "Greeter", {
    runtime: lambda.Runtime.NODEJS_22_X,
    code: lambda.Code.fromInline("exports.handler = async () => null"),
    handler: "index.handler",
  });
  return { stack, fn };
}

function resourceProperties(template) {
  const resources = Object.values(template.findResources("Custom::PerdureDeployment"));
  assert.equal(resources.length, 1);
  return resources[0].Properties;
}

test("a version: two Node 22 handlers behind a Provider and the custom resource's properties", () => {
  const { stack, fn } = stackWithFunction();
  const dp = new PerdureDeployment(stack, "Perdure", { adminUrl: "https://perdure.internal:9070", function: fn.currentVersion });
  const t = Template.fromStack(stack);
  for (const entry of ["index.onEvent", "index.isComplete"]) {
    t.hasResourceProperties("AWS::Lambda::Function", { Runtime: "nodejs22.x", Handler: entry });
  }
  const props = resourceProperties(t);
  assert.equal(props.adminUrl, "https://perdure.internal:9070");
  assert.deepEqual(Object.keys(props.functionArn), ["Ref"], "the version's ARN");
  assert.match(props.functionArn.Ref, /GreeterCurrentVersion/);
  assert.equal(props.promote, "true");
  assert.equal(props.removalPolicy, "retain");
  assert.equal(props.waitForDrainSeconds, "0");
  assert.equal(props.rampPercent, undefined);
  assert.equal(props.retireKeep, undefined);
  assert.ok(props.ServiceToken, "the Provider's framework function");
  // Its attributes are the handler's Data.
  assert.deepEqual(stack.resolve(dp.deploymentId)["Fn::GetAtt"][1], "DeploymentId");
  assert.deepEqual(stack.resolve(dp.retired)["Fn::GetAtt"][1], "Retired");
});

test("an alias: its ARN, and the version behind it so a moved alias is an update", () => {
  const { stack, fn } = stackWithFunction();
  const alias = new lambda.Alias(stack, "Live", { aliasName: "live", version: fn.currentVersion });
  new PerdureDeployment(stack, "Perdure", { adminUrl: "http://10.0.0.5:9070", function: alias });
  const props = resourceProperties(Template.fromStack(stack));
  assert.match(props.functionArn.Ref, /Live/);
  assert.deepEqual(Object.keys(props.functionVersion), ["Fn::GetAtt"]);
  assert.equal(props.functionVersion["Fn::GetAtt"][1], "Version");
});

test("the invoke role may invoke every version of the function; the token secret is readable", () => {
  const { stack, fn } = stackWithFunction();
  const invokeRole = new iam.Role(stack, "Invoker", { assumedBy: new iam.AccountRootPrincipal() });
  const authTokenSecret = new secretsmanager.Secret(stack, "Token");
  new PerdureDeployment(stack, "Perdure", { adminUrl: "https://p:9070", function: fn.currentVersion, invokeRole, authTokenSecret });
  const t = Template.fromStack(stack);
  const props = resourceProperties(t);
  assert.equal(props.assumeRoleArn["Fn::GetAtt"][1], "Arn");
  assert.ok(props.authTokenSecretArn.Ref, "the secret's ARN");
  const fnArn = { "Fn::GetAtt": [Match.stringLikeRegexp("^Greeter"), "Arn"] };
  t.hasResourceProperties("AWS::IAM::Policy", {
    Roles: [{ Ref: Match.stringLikeRegexp("^Invoker") }],
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Action: "lambda:InvokeFunction",
          Effect: "Allow",
          Resource: [fnArn, { "Fn::Join": ["", [fnArn, ":*"]] }],
        }),
      ]),
    },
  });
  // Both handlers read the secret.
  const readers = Object.values(t.findResources("AWS::IAM::Policy")).filter((p) =>
    JSON.stringify(p.Properties.PolicyDocument).includes("secretsmanager:GetSecretValue"),
  );
  assert.equal(readers.length, 2);
});

test("ramp with a smoke test, retirement that waits, destroy on deletion", () => {
  const { stack, fn } = stackWithFunction();
  new PerdureDeployment(stack, "Perdure", {
    adminUrl: "https://p:9070",
    ingressUrl: "https://p:8080",
    function: fn.currentVersion,
    ramp: { percent: 10, smokeTest: { service: "Greeter", handler: "greet", body: "smoke", expect: "Hello, smoke!" } },
    retire: { keep: 1, waitForDrain: Duration.minutes(20) },
    breaking: true,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const t = Template.fromStack(stack);
  const props = resourceProperties(t);
  assert.equal(props.rampPercent, "10");
  assert.deepEqual(JSON.parse(props.smokeTest), { service: "Greeter", handler: "greet", body: "smoke", expect: "Hello, smoke!" });
  assert.equal(props.retireKeep, "1");
  assert.equal(props.waitForDrainSeconds, "1200");
  assert.equal(props.breaking, "true");
  assert.equal(props.removalPolicy, "destroy");
  // The Provider waits with a state machine that polls isComplete.
  t.resourceCountIs("AWS::StepFunctions::StateMachine", 1);
});

test("bad settings fail synthesis naming the setting", () => {
  const cases = [
    [{ adminUrl: "perdure:9070" }, /adminUrl must be an http:\/\/ or https:\/\/ URL/],
    [{ ramp: { percent: 150 } }, /ramp.percent must be a whole number from 1 to 99, got 150/],
    [{ ramp: { percent: 0 } }, /ramp.percent/],
    [{ retire: { keep: -1 } }, /retire.keep must be a whole number >= 0/],
    [{ retire: { keep: 1, waitForDrain: Duration.hours(3) } }, /waitForDrain may be at most 110 minutes/],
    [{ smokeTest: { service: "Greeter", handler: "greet" } }, /a smoke test needs ingressUrl/],
  ];
  for (const [extra, message] of cases) {
    const { stack, fn } = stackWithFunction();
    assert.throws(() => new PerdureDeployment(stack, "Perdure", { adminUrl: "https://p:9070", function: fn.currentVersion, ...extra }), message);
  }
});

test("examples/cdk synthesizes with the real cdk CLI, ramping with -c rampPercent=10", () => {
  // The example as a user's project would have it: @perdure/cdk and aws-cdk-lib installed.
  const app = mkdtempSync(join(tmpdir(), "perdure-cdk-example-"));
  cpSync(join(cdkDir, "..", "examples", "cdk"), app, { recursive: true });
  mkdirSync(join(app, "node_modules", "@perdure"), { recursive: true });
  symlinkSync(cdkDir, join(app, "node_modules", "@perdure", "cdk"));
  for (const dep of ["aws-cdk-lib", "constructs"]) symlinkSync(join(cdkDir, "node_modules", dep), join(app, "node_modules", dep));
  const cli = join(cdkDir, "node_modules", "aws-cdk", "bin", "cdk");
  const synth = (...args) =>
    execFileSync(process.execPath, [cli, "synth", "--no-notices", "--no-version-reporting", "-q", ...args], {
      cwd: app,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
  synth("-c", "adminUrl=https://perdure.example:9070", "-c", "rampPercent=10");
  const template = JSON.parse(readFileSync(join(app, "cdk.out", "GreeterService.template.json"), "utf8"));
  const props = resourceProperties(Template.fromJSON(template));
  assert.equal(props.adminUrl, "https://perdure.example:9070");
  assert.equal(props.rampPercent, "10");
  synth("-c", "adminUrl=https://perdure.example:9070");
  const promoted = JSON.parse(readFileSync(join(app, "cdk.out", "GreeterService.template.json"), "utf8"));
  assert.equal(resourceProperties(Template.fromJSON(promoted)).rampPercent, undefined);
});
