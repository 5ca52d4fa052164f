/**
 * Seeded, time-bounded fuzzing of the label readers (issue 8): the SCUT-FBP5500 labels and
 * split files (with its ratings CSV), the manifest CSV, list files, and the CSV and line
 * splitters under them. Mutations: BOM, CRLF, blank lines, duplicate and deleted rows,
 * truncation, quotes (balanced or not), separators, labels out of range (negative, huge,
 * non-decimal, `2.5`, `1e0`, `999`), `f` beside `F`, `NA`, `__proto__`-like names, invalid
 * UTF-8 and NUL bytes. Every case must end in a consistent dataset or a plain Error naming
 * the file (see _label_fuzz_worker.ts), and a task on each label of a dataset must get a
 * class table every label fits or be refused naming a file (classes.ts); a case that does
 * not finish within MAX_CASE_MS is a hang and fails the test with its number.
 */
import assert from "node:assert/strict";
import type { FuzzReply, FuzzRequest } from "./_label_fuzz_worker.ts";

const SEED = Number(Deno.env.get("FBP_FUZZ_SEED") ?? 20250808);
/** Wall time for all readers together (each gets an equal share). */
const BUDGET_MS = Number(Deno.env.get("FBP_FUZZ_BUDGET_MS") ?? 15_000);
const MAX_CASE_MS = 5_000;
/** Time the worker may take to load (and type-check) before its first case, on a busy machine. */
const START_MS = 60_000;

Deno.test("label readers end every fuzzed input in a dataset or a clear error", async () => {
  const worker = new Worker(new URL("./_label_fuzz_worker.ts", import.meta.url), {
    type: "module",
  });
  let last: { reader: string; n: number } | undefined;
  let lastAt = performance.now();
  let watchdog: ReturnType<typeof setInterval> | undefined;
  try {
    const done = await new Promise<Extract<FuzzReply, { kind: "done" }>>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FuzzReply>) => {
        lastAt = performance.now();
        if (e.data.kind === "case") last = e.data;
        else resolve(e.data);
      };
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`the fuzz worker crashed: ${e.message}`));
      };
      watchdog = setInterval(() => {
        if (performance.now() - lastAt > (last === undefined ? START_MS : MAX_CASE_MS)) {
          reject(
            new Error(
              last === undefined
                ? `the fuzz worker did not start within ${START_MS / 1000} s`
                : `${last.reader} case ${last.n} (seed ${SEED}) hangs`,
            ),
          );
        }
      }, 250);
      worker.postMessage(
        {
          seed: SEED,
          budgetMs: BUDGET_MS,
          cases: {
            "csv parser": 20000,
            "text lines": 20000,
            "list file": 5000,
            "manifest csv": 5000,
            "scut labels+splits": 3000,
          },
        } satisfies FuzzRequest,
      );
    });
    const summary = Object.entries(done.counts).map(([r, n]) =>
      `${r}: ${n} cases (${done.outcomes[r].ok} read, ${done.outcomes[r].error} refused)`
    );
    console.log(`label fuzz, seed ${SEED}:\n  ${summary.join("\n  ")}`);
    assert.deepEqual(done.failures, []);
    for (const [reader, n] of Object.entries(done.counts)) {
      assert.ok(n >= 300, `${reader}: only ${n} cases ran in the time budget`);
    }
  } finally {
    clearInterval(watchdog);
    worker.terminate();
  }
});
