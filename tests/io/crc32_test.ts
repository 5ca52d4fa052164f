import assert from "node:assert/strict";
import { crc32, crc32Portable } from "../../src/io/crc32.ts";
import { mulberry32 } from "./_helpers.ts";

Deno.test("crc32() gives the standard check value and agrees with the portable table", () => {
  const check = new TextEncoder().encode("123456789");
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Portable(check), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  const random = mulberry32(7);
  const bytes = Uint8Array.from({ length: 100_003 }, () => Math.floor(random() * 256));
  // Views at odd offsets, and continuation over pieces.
  const view = bytes.subarray(3, 99_001);
  assert.equal(crc32(view), crc32Portable(view));
  const whole = crc32(bytes);
  assert.equal(crc32(bytes.subarray(50_000), crc32(bytes.subarray(0, 50_000))), whole);
  assert.equal(
    crc32Portable(bytes.subarray(77), crc32Portable(bytes.subarray(0, 77))),
    whole,
  );
});
