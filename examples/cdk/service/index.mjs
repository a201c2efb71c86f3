// The function's code: bundle it with its dependencies (e.g. `npx esbuild src/greeter.ts
// --bundle --platform=node --format=esm --outfile=service/index.mjs`) before `cdk deploy`.
// This placeholder only keeps `cdk synth` working.
export const handler = async () => {
  throw new Error("examples/cdk/service: replace this file with your bundled Restate SDK handler");
};
