/**
 * Pieces of node:util parseArgs option tables that the CLIs share.
 * @module
 */
import type { parseArgs, ParseArgsOptionsConfig } from "node:util";

/** parseArgs options of flags that each take one string value, by flag name. */
export function stringOptions<const N extends string>(
  ...names: N[]
): { [K in N]: { type: "string" } } {
  return Object.fromEntries(names.map((n) => [n, { type: "string" }])) as {
    [K in N]: { type: "string" };
  };
}

/** The -h / --help flag. */
export const HELP_OPTION = { help: { type: "boolean", short: "h" } } as const;

/** What parseArgs gives for `options` (with positionals allowed when `P` is true). */
export type ParsedArgs<O extends ParseArgsOptionsConfig, P extends boolean> = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: P; options: O }>
>;
