// `PerdureDeployment`: registers a Lambda version (or alias) with perdure on every deploy,
// optionally smoke-tests and ramps it, promotes it, and retires superseded deployments once
// perdure reports them drained. The work is done by `handler/index.mjs` through a custom
// resource (the CDK Provider framework, so waiting for a drain can outlast one Lambda run).

import * as path from "node:path";
import { CustomResource, Duration, RemovalPolicy, Token } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as cr from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";

/** One call through perdure's ingress to the new deployment before it gets any traffic. */
export interface SmokeTest {
  /** The service to call, e.g. `Greeter`. */
  readonly service: string;
  /** The handler to call, e.g. `greet`. */
  readonly handler: string;
  /** The key, for a virtual object or a workflow. */
  readonly key?: string;
  /** The JSON body (default `null`). */
  readonly body?: unknown;
  /** The JSON answer it must give; without it any 2xx passes. */
  readonly expect?: unknown;
  /** How long the call may take (default 60 s). */
  readonly timeout?: Duration;
}

export interface RampOptions {
  /** The share of new invocations (1-99) the new deployment gets; objects and workflows by key. */
  readonly percent: number;
  /** A call on the new deployment before the ramp starts; a failure fails the deploy. */
  readonly smokeTest?: SmokeTest;
}

export interface RetireOptions {
  /** Superseded deployments to keep registered (for a quick rollback), newest first. */
  readonly keep: number;
  /**
   * Hold the deploy until superseded deployments drain, retiring each as it does: `true` waits
   * up to 30 minutes, a Duration up to that long (at most 110 minutes). Past it the deploy
   * succeeds and reports those still draining (a later deploy retires them). `false` (default)
   * retires only what is already drained.
   */
  readonly waitForDrain?: boolean | Duration;
}

export interface PerdureDeploymentProps {
  /** perdure's admin API as the handler reaches it, e.g. `https://perdure.internal:9070`. */
  readonly adminUrl: string;
  /** The function to register: a version (`fn.currentVersion`) or an alias. */
  readonly function: lambda.IVersion | lambda.IAlias;
  /**
   * The role perdure assumes to invoke the function (`assume_role_arn`); it is granted
   * `lambda:InvokeFunction` on the function's versions. Without it perdure uses its own credentials.
   */
  readonly invokeRole?: iam.IRole;
  /** A secret holding one of perdure's `admin.auth-tokens`, sent as `Authorization: Bearer`. */
  readonly authTokenSecret?: secretsmanager.ISecret;
  /** perdure's ingress as the handler reaches it; needed by a smoke test. */
  readonly ingressUrl?: string;
  /** Send all new invocations to the new deployment (default true); ignored while `ramp` is set. */
  readonly promote?: boolean;
  /** A smoke test before promoting (without a ramp). */
  readonly smokeTest?: SmokeTest;
  /** Send only a share of new invocations to it (a canary), instead of promoting. */
  readonly ramp?: RampOptions;
  /** Retire superseded deployments once drained. Without it nothing is removed. */
  readonly retire?: RetireOptions;
  /** Accept a revision perdure reports as breaking (`breaking: true`). */
  readonly breaking?: boolean;
  /**
   * What stack deletion does: RETAIN (default) leaves the function's deployments registered;
   * DESTROY removes them once nothing is pinned to them (waiting up to `retire.waitForDrain`),
   * and fails naming what is still pinned otherwise.
   */
  readonly removalPolicy?: RemovalPolicy;
  /** The VPC the handler runs in, when the admin API is only reachable there. */
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
}

const DEFAULT_WAIT = Duration.minutes(30);
const MAX_WAIT = Duration.minutes(110);

export class PerdureDeployment extends Construct {
  /** The perdure deployment id (`dp_…`) of the registered version. */
  public readonly deploymentId: string;
  /** `Service=revision,…` as perdure registered them. */
  public readonly revisions: string;
  /** Deployment ids retired by this deploy, comma-separated. */
  public readonly retired: string;
  /** Superseded deployment ids still draining when the deploy ended, comma-separated. */
  public readonly draining: string;
  /** The Lambda function that runs the registration. */
  public readonly handler: lambda.IFunction;

  constructor(scope: Construct, id: string, props: PerdureDeploymentProps) {
    super(scope, id);
    validate(props);
    const target = props.function;
    const isAlias = "aliasName" in target;
    const version: lambda.IVersion = isAlias ? (target as lambda.IAlias).version : (target as lambda.IVersion);
    const wait = waitFor(props.retire?.waitForDrain);

    const handlerProps = (entry: string): lambda.FunctionProps => ({
      runtime: lambda.Runtime.NODEJS_22_X,
      code: lambda.Code.fromAsset(path.join(__dirname, "..", "handler")),
      handler: `index.${entry}`,
      timeout: Duration.minutes(5),
      memorySize: 256,
      description: `perdure: ${entry} for ${id}`,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
    });
    const onEvent = new lambda.Function(this, "OnEvent", handlerProps("onEvent"));
    const isComplete = new lambda.Function(this, "IsComplete", handlerProps("isComplete"));
    for (const fn of [onEvent, isComplete]) props.authTokenSecret?.grantRead(fn);
    this.handler = onEvent;

    if (props.invokeRole) {
      // After the first attempt perdure invokes the version that ran (an alias may move), so
      // the role may invoke every version of the function, not only the one named here.
      props.invokeRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ["lambda:InvokeFunction"],
          resources: [version.lambda.functionArn, `${version.lambda.functionArn}:*`],
        }),
      );
    }

    const provider = new cr.Provider(this, "Provider", {
      onEventHandler: onEvent,
      isCompleteHandler: isComplete,
      queryInterval: Duration.seconds(15),
      totalTimeout: Duration.minutes(wait.toMinutes() + 10),
    });

    const smoke = props.ramp?.smokeTest ?? props.smokeTest;
    const resource = new CustomResource(this, "Resource", {
      serviceToken: provider.serviceToken,
      resourceType: "Custom::PerdureDeployment",
      properties: {
        adminUrl: props.adminUrl,
        ingressUrl: props.ingressUrl,
        functionArn: target.functionArn,
        // An alias keeps its ARN when it moves: the version it points at makes it an update.
        functionVersion: version.version,
        assumeRoleArn: props.invokeRole?.roleArn,
        authTokenSecretArn: props.authTokenSecret?.secretArn,
        promote: String(props.promote ?? true),
        rampPercent: props.ramp ? String(props.ramp.percent) : undefined,
        smokeTest: smoke ? JSON.stringify(smokeJson(smoke)) : undefined,
        retireKeep: props.retire ? String(props.retire.keep) : undefined,
        waitForDrainSeconds: String(wait.toSeconds()),
        breaking: String(props.breaking ?? false),
        removalPolicy: props.removalPolicy === RemovalPolicy.DESTROY ? "destroy" : "retain",
      },
    });
    // perdure's deployments outlive the custom resource's replacement; what deletion removes
    // is the handler's decision (removalPolicy above), so the resource itself is always deleted.
    resource.applyRemovalPolicy(RemovalPolicy.DESTROY);
    this.deploymentId = resource.getAttString("DeploymentId");
    this.revisions = resource.getAttString("Revisions");
    this.retired = resource.getAttString("Retired");
    this.draining = resource.getAttString("Draining");
  }
}

function smokeJson(t: SmokeTest): Record<string, unknown> {
  return {
    service: t.service,
    handler: t.handler,
    key: t.key,
    body: t.body,
    expect: t.expect,
    timeoutSeconds: t.timeout?.toSeconds(),
  };
}

function waitFor(w: boolean | Duration | undefined): Duration {
  if (w === undefined || w === false) return Duration.seconds(0);
  return w === true ? DEFAULT_WAIT : w;
}

function validate(props: PerdureDeploymentProps): void {
  const url = (name: string, v: string | undefined) => {
    if (v !== undefined && !Token.isUnresolved(v) && !/^https?:\/\/[^/]+/.test(v)) {
      throw new Error(`PerdureDeployment: ${name} must be an http:// or https:// URL, got '${v}'`);
    }
  };
  url("adminUrl", props.adminUrl);
  url("ingressUrl", props.ingressUrl);
  const percent = props.ramp?.percent;
  if (percent !== undefined && !Token.isUnresolved(percent) && (!Number.isInteger(percent) || percent < 1 || percent > 99)) {
    throw new Error(`PerdureDeployment: ramp.percent must be a whole number from 1 to 99, got ${percent}`);
  }
  const keep = props.retire?.keep;
  if (keep !== undefined && !Token.isUnresolved(keep) && (!Number.isInteger(keep) || keep < 0)) {
    throw new Error(`PerdureDeployment: retire.keep must be a whole number >= 0, got ${keep}`);
  }
  const wait = props.retire?.waitForDrain;
  if (wait instanceof Duration && wait.toSeconds() > MAX_WAIT.toSeconds()) {
    throw new Error(`PerdureDeployment: retire.waitForDrain may be at most 110 minutes, got ${wait.toHumanString()}`);
  }
  if ((props.smokeTest || props.ramp?.smokeTest) && !props.ingressUrl) {
    throw new Error("PerdureDeployment: a smoke test needs ingressUrl");
  }
  if (props.smokeTest && props.ramp?.smokeTest) {
    throw new Error("PerdureDeployment: give the smoke test either as smokeTest or as ramp.smokeTest, not both");
  }
}
