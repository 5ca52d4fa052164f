/**
 * Parameters and GFLOPs (multiply-adds per image) of the bare classifiers against the
 * figures torchvision's model documentation gives for the same builders (1000 classes,
 * 224×224): resnet18 11,689,512 parameters and 1.81 GFLOPS; mobilenet_v3_small 2,542,856
 * and 0.06; efficientnet_b0 5,288,548 and 0.39.
 */
import assert from "node:assert/strict";
import { loadBackend } from "../../src/backend/load.ts";
import { classifierNetwork } from "../../src/models/classifier.ts";
import { modelSummary } from "../../src/models/summary.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";

const cases: [string, number, number, number][] = [
  ["resnet18", 11_689_512, 1.80, 1.83],
  ["mobilenet_v3_small", 2_542_856, 0.055, 0.065],
  ["efficientnet_b0", 5_288_548, 0.38, 0.40],
];

for (const [arch, params, lo, hi] of cases) {
  Deno.test(`${arch}: torchvision's parameter count and GFLOPs at 224`, async () => {
    const backend = await loadBackend("cpu");
    setDefaultBackend(backend);
    const net = classifierNetwork(arch, { classes: 1000, backend });
    try {
      const s = modelSummary(net, 224);
      assert.equal(s.params, params);
      assert.ok(s.gflops >= lo && s.gflops <= hi, `${arch}: ${s.gflops} GFLOPs`);
      assert.equal(s.imageSize, 224);
    } finally {
      net.dispose();
    }
  });
}
