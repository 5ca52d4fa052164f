/**
 * Every op's gradient against central finite differences, computed in float64 on the
 * reference backend: checks the backward rules independently of any kernel.
 */
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { opCases } from "./cases.ts";
import { assertClose, finiteDifferences, runCase } from "./harness.ts";

const f64 = new ReferenceBackend({ precision: "f64" });
setDefaultBackend(f64);

for (const c of opCases) {
  Deno.test(`${c.name}: gradients match finite differences`, () => {
    const result = runCase(f64, c);
    c.inputs.forEach((spec, i) => {
      if (spec.grad === false) return;
      const numeric = finiteDifferences(c, i);
      const analytic = result.grads[i];
      if (!analytic) throw new Error(`${c.name}: input ${i} got no gradient`);
      assertClose(`${c.name} d/input${i}`, analytic, numeric, 1e-5, 1e-4);
    });
  });
}
