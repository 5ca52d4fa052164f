/**
 * The fixed-λ step's numbers on the reference backend, for task_weights_test.ts:
 * `deno run -A tests/train/_fixed_step_golden.ts write` records them (run once on the code
 * before adaptive task weights existed: tests/testdata/fixed_step_golden.json); the test
 * imports {@link fixedStepNumbers} and compares bit for bit. Not a test itself.
 * @module
 */
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../../src/models/policy.ts";
import { Rng } from "../../src/random/rng.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { policyRegularisers } from "../../src/train/policy_loss.ts";
import { RUN_DEFAULTS } from "../../src/train/run_config.ts";
import { type StepBatch, trainStep, type TrainStepOptions } from "../../src/train/step.ts";

/** Loss, task losses and every parameter's gradient (as float bits) of two fixed-λ steps. */
export function fixedStepNumbers(
  backend: ReferenceBackend = new ReferenceBackend(),
  extra: Partial<TrainStepOptions> = {},
): Record<string, unknown> {
  setDefaultBackend(backend);
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks: [
        { name: "beauty", classes: 5, database: "a" },
        { name: "gender", classes: 2, database: "b" },
      ],
      databases: ["a", "b"],
      widths: [4, 4, 8, 8],
      dropout: 0.1,
    }),
    { seed: 7, backend },
  );
  const rng = new Rng(11);
  const batch = (database: string, task: string, k: number): StepBatch => ({
    database,
    size: 32,
    images: Float32Array.from({ length: 3 * 3 * 32 * 32 }, () => rng.normal()),
    targets: { [task]: Int32Array.from({ length: 3 }, (_, i) => i === 1 ? -1 : (i + k) % k) },
  });
  const batches = [batch("a", "beauty", 5), batch("b", "gender", 2)];
  const out: Record<string, unknown> = {};
  const lambdas = { beauty: 1, gender: 0.6 };
  // A weight step with every block executed, then a logit step through soft gates with the
  // policy regularisers.
  for (const kind of ["weights", "logits"] as const) {
    net.policy.logits.requiresGrad = kind === "logits";
    for (const p of net.weightParameters()) p.requiresGrad = kind === "weights";
    const noise = gumbelNoise(net.policy.logits.size, new Rng(5, 0x6b));
    const stats = trainStep(net, batches, {
      lambdas,
      dropoutSeed: 3,
      gates: kind === "weights" ? () => net.allExecuteGates() : () =>
        new Map(
          gumbelGates(net.policy.logits, noise, { tau: 5, window: 8 }).map((g, i) => [
            net.config.tasks[i].name,
            g,
          ]),
        ),
      extraLoss: kind === "logits"
        ? () => policyRegularisers(net.policy.logits, 8, RUN_DEFAULTS)
        : undefined,
      ...extra,
    });
    const grads: Record<string, string> = {};
    for (const [k, p] of net.namedParameters()) {
      if (!p.grad) continue;
      grads[k] = btoa(String.fromCharCode(...new Uint8Array(p.grad.toArray().buffer)));
      p.grad.dispose();
      p.grad = null;
    }
    out[kind] = { loss: stats.loss, tasks: stats.tasks, grads };
  }
  net.dispose();
  return out;
}

if (import.meta.main && Deno.args[0] === "write") {
  const path = new URL("../testdata/fixed_step_golden.json", import.meta.url);
  await Deno.writeTextFile(path, JSON.stringify(fixedStepNumbers()) + "\n");
}
