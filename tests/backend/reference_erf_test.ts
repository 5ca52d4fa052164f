/**
 * The reference backend's erf and erfc (GELU's ground truth; JavaScript has no Math.erf)
 * against values computed with mpmath at 30 digits.
 */
import assert from "node:assert/strict";
import { erf, erfc } from "../../src/backend/reference.ts";

// [x, erf(x), erfc(x)], mpmath.erf / mpmath.erfc rounded to 17 digits.
const KNOWN: [number, number, number][] = [
  [1e-8, 1.1283791670955125e-8, 0.99999998871620833],
  [0.1, 0.11246291601828489, 0.88753708398171511],
  [0.5, 0.52049987781304654, 0.47950012218695346],
  [1, 0.84270079294971487, 0.15729920705028513],
  [1.5, 0.96610514647531073, 0.033894853524689273],
  [1.9999, 0.99532019790702939, 0.0046798020929706085],
  [2, 0.99532226501895273, 0.0046777349810472658],
  [2.5, 0.99959304798255504, 0.00040695201744495894],
  [3, 0.99997790950300141, 2.2090496998585441e-5],
  [4, 0.9999999845827421, 1.5417257900280019e-8],
  [5, 0.99999999999846254, 1.5374597944280349e-12],
  [6, 0.99999999999999998, 2.1519736712498913e-17],
  [10, 1, 2.0884875837625448e-45],
  [26, 1, 5.6631924088561428e-296],
  [-0.5, -0.52049987781304654, 1.5204998778130465],
  [-2.5, -0.99959304798255504, 1.999593047982555],
  [-3, -0.99997790950300141, 1.9999779095030014],
  [-5, -0.99999999999846254, 1.9999999999984625],
];

function assertRelative(what: string, got: number, want: number, rtol: number): void {
  const err = Math.abs(got - want) / Math.abs(want);
  assert.ok(err <= rtol, `${what}: ${got} vs ${want} (relative error ${err})`);
}

Deno.test("erf and erfc match mpmath to a relative 1e-12", () => {
  for (const [x, e, c] of KNOWN) {
    assertRelative(`erf(${x})`, erf(x), e, 1e-14);
    assertRelative(`erfc(${x})`, erfc(x), c, 1e-12);
  }
});

Deno.test("erf is odd, bounded and exact at 0; erfc underflows to 0 and tends to 2", () => {
  for (let x = -6; x <= 6; x += 0.37) {
    assert.equal(erf(-x), -erf(x));
    assert.ok(Math.abs(erf(x)) <= 1);
    assertRelative(`erf + erfc at ${x}`, erf(x) + erfc(x), 1, 1e-15);
  }
  assert.ok(Object.is(erf(0), 0) && Object.is(erf(-0), -0));
  assert.equal(erfc(0), 1);
  assert.equal(erfc(30), 0);
  assert.equal(erfc(-30), 2);
  assert.equal(erf(Infinity), 1);
  assert.equal(erf(-Infinity), -1);
  assert.ok(Number.isNaN(erf(NaN)) && Number.isNaN(erfc(NaN)));
});
