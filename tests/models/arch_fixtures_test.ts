/**
 * Every architecture builder against torchvision: the fixtures of tasks/make_arch_fixtures.py
 * hold torchvision 0.14's eval-mode logits and probabilities for small configurations (and
 * the cheap full-size variants) under formula weights with perturbed BN statistics; fbp
 * builds the same network as a bare classifier, imports the same weights under torchvision's
 * keys, and must agree within 1e-4 on probabilities.
 */
import assert from "node:assert/strict";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { classifierNetwork } from "../../src/models/classifier.ts";
import { archFamily } from "../../src/models/archs/registry.ts";
import { importTorchvisionWeights } from "../../src/models/torchvision_import.ts";
import { softmax } from "../../src/ops/softmax.ts";
import { scope, setDefaultBackend, tensor } from "../../src/tensor/tensor.ts";
import { testBackends } from "../backends.ts";
import { formulaWeights } from "./_formula_weights.ts";

const dir = new URL("../testdata/archs/", import.meta.url);
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
  n.endsWith(".safetensors")
).sort();

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const { name: backendName, backend } of await testBackends()) {
  for (const file of files) {
    const cas = file.replace(/\.safetensors$/, "");
    Deno.test({
      name: `${backendName}: ${cas} equals torchvision (eval, probabilities within 1e-4)`,
      ignore: !backend,
      fn: async () => {
        setDefaultBackend(backend!);
        const fx = await readSafetensors(new URL(file, dir).pathname);
        const meta = fx.metadata;
        const archConfig = JSON.parse(meta.archConfig);
        const net = classifierNetwork(meta.arch, {
          classes: Number(meta.classes),
          archConfig: archConfig ?? undefined,
          backend: backend!,
        });
        try {
          assert.equal(net.backbone.classifier, archFamily(meta.arch).classifier);
          const weights = formulaWeights(JSON.parse(meta.keys));
          importTorchvisionWeights(net, weights, { source: file, bare: true });
          const images = fx.tensors.get("images")!;
          const want = fx.tensors.get("probs")!.data;
          const wantLogits = fx.tensors.get("logits")!.data;
          const [logits, probs] = scope(() => {
            const x = tensor(images.data, images.shape, { backend: backend! });
            const out = net.forward(x, "images").get("output")!;
            return [out.toArray(), softmax(out).toArray()];
          });
          const dp = maxAbsDiff(probs, want);
          const dl = maxAbsDiff(logits, wantLogits);
          assert.ok(dp <= 1e-4, `${cas}: probabilities differ by ${dp} (logits by ${dl})`);
          assert.ok(dl <= 2e-3, `${cas}: logits differ by ${dl}`);
        } finally {
          net.dispose();
        }
      },
    });
  }
}
