/**
 * Shared entry plumbing of the CLIs: run `main`, print an `Error` as one clear line
 * (no stack trace for expected failures) and exit non-zero.
 * @module
 */

/** Runs a CLI's main function with uniform error reporting. */
export async function runCli(main: () => Promise<number | void>): Promise<void> {
  try {
    const code = await main();
    Deno.exit(code ?? 0);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`error: ${message}`);
    if (Deno.env.get("FBP_DEBUG") && e instanceof Error) console.error(e.stack);
    Deno.exit(1);
  }
}
