/**
 * Pieces of node:util parseArgs option tables that the CLIs share: the parser every CLI
 * uses ({@linkcode parseFlags}: `--batch -1` is a value, every parse error is one line) and
 * the number parser of every numeric flag ({@linkcode numberFlag}).
 * @module
 */
import { parseArgs, type ParseArgsConfig, type ParseArgsOptionsConfig } from "node:util";

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

/** A command line that parseArgs refused, as one line; `code` is parseArgs' error code. */
export class FlagError extends Error {
  /** parseArgs' code (`ERR_PARSE_ARGS_…`), so callers can tell a usage error. */
  readonly code: string;
  /** Creates the error. */
  constructor(message: string, code: string) {
    super(message);
    this.name = "FlagError";
    this.code = code;
  }
}

/**
 * `--flag -1` → `--flag=-1` for every flag that takes a value, when the word after it starts
 * with one "-" and is not itself an option of the command (parseArgs would call it
 * ambiguous). `--out --json` stays an error: a missing value, not a value "--json".
 */
export function joinDashValues(args: readonly string[], options: ParseArgsOptionsConfig): string[] {
  const shorts = new Set(Object.values(options).map((o) => o.short).filter((s) => s));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i], next = args[i + 1];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const takesValue = arg.startsWith("--") && !arg.includes("=") &&
      Object.hasOwn(options, arg.slice(2)) && options[arg.slice(2)].type === "string";
    if (
      takesValue && next !== undefined && next.length > 1 && next[0] === "-" &&
      next[1] !== "-" && !shorts.has(next.slice(1))
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function oneLine(e: Error & { code?: string }, args: readonly string[]): FlagError {
  const code = e.code ?? "ERR_PARSE_ARGS";
  const msg = e.message;
  let m;
  if ((m = /^Option '(-[^' ]+)(?: <value>)?' argument missing/.exec(msg))) {
    return new FlagError(`Cannot parse ${m[1]}: it needs a value (see --help)`, code);
  }
  if ((m = /^Option '(-[^' ]+)' argument is ambiguous/.exec(msg))) {
    const flag = m[1];
    const next = args[args.indexOf(flag) + 1];
    return new FlagError(
      `Cannot parse ${flag}: it needs a value, and "${next}" is an option; ` +
        `to give a value that starts with "-", write ${flag}=VALUE`,
      code,
    );
  }
  if ((m = /^Option '(-[^' ]+)' does not take an argument/.exec(msg))) {
    return new FlagError(`Cannot parse ${m[1]}: it takes no value (see --help)`, code);
  }
  if ((m = /^Unknown option '([^']+)'/.exec(msg))) {
    return new FlagError(
      `Cannot parse the command line: unknown option ${m[1]} (see --help)`,
      code,
    );
  }
  if ((m = /^Unexpected argument '([^']*)'/.exec(msg))) {
    return new FlagError(
      `Cannot parse the command line: unexpected argument "${m[1]}": ` +
        "this command takes options only (see --help)",
      code,
    );
  }
  return new FlagError(`Cannot parse the command line: ${msg.split("\n")[0]}`, code);
}

/**
 * node:util parseArgs with the CLIs' conventions: a value may start with "-" (`--batch -1`
 * is the value "-1", refused by the flag's own check with its range), and a refused
 * command line is one line naming the option.
 * @throws {FlagError} for an unknown option, a missing value or an unexpected argument
 */
export function parseFlags<const T extends ParseArgsConfig & { args: string[] }>(
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = joinDashValues(config.args, config.options ?? {});
  try {
    return parseArgs({ ...config, args });
  } catch (e) {
    if (e instanceof Error && String((e as { code?: string }).code).startsWith("ERR_PARSE_ARGS")) {
      throw oneLine(e, args);
    }
    throw e;
  }
}

/** The values a numeric flag accepts (bounds inclusive unless named `above` / `below`). */
export interface NumberRange {
  /** Whole numbers only. */
  integer?: boolean;
  /** Smallest value allowed. */
  min?: number;
  /** Largest value allowed. */
  max?: number;
  /** Values must be greater than this. */
  above?: number;
  /** Values must be less than this. */
  below?: number;
}

/** "an integer from 1 to 64", "a number > 0", "a number from 0 to 1" … */
export function describeRange(r: NumberRange): string {
  const what = r.integer ? "an integer" : "a number";
  const lo = r.min !== undefined ? `${r.min}` : r.above !== undefined ? `${r.above}` : undefined;
  const hi = r.max !== undefined ? `${r.max}` : r.below !== undefined ? `${r.below}` : undefined;
  if (r.min !== undefined && r.max !== undefined) return `${what} from ${lo} to ${hi}`;
  const parts: string[] = [];
  if (lo !== undefined) parts.push(`${r.min !== undefined ? "≥" : ">"} ${lo}`);
  if (hi !== undefined) parts.push(`${r.max !== undefined ? "≤" : "<"} ${hi}`);
  return parts.length ? `${what} ${parts.join(" and ")}` : what;
}

/** A decimal number as people write it: "3", "-1", "0.5", ".5", "1e-3" (no hex, no spaces). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses a numeric flag's value, checking it against `range`.
 * @returns undefined when the flag was not given
 * @throws {Error} `Cannot parse --flag: expected <range>: current value is "v"` for a value
 *   that is not a decimal number, not a whole number where one is needed, too large to be
 *   exact, or out of range
 */
export function numberFlag(v: unknown, flag: string, range: NumberRange = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "string" && DECIMAL.test(v) ? Number(v) : NaN;
  const ok = Number.isFinite(n) &&
    (!range.integer || (Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER)) &&
    (range.min === undefined || n >= range.min) &&
    (range.max === undefined || n <= range.max) &&
    (range.above === undefined || n > range.above) &&
    (range.below === undefined || n < range.below);
  if (!ok) {
    throw new Error(
      `Cannot parse --${flag}: expected ${describeRange(range)}: current value is "${v}"`,
    );
  }
  return n;
}

/** Seeds: the generator uses 32 bits, so a larger or negative seed would alias another. */
export const SEED_RANGE: NumberRange = { integer: true, min: 0, max: 2 ** 32 - 1 };
