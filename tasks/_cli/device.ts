/**
 * `--device cpu|cuda|auto`, `--precision` and `--deterministic` for every command that
 * runs a network, and the entry plumbing
 * those commands share (their common options, `--help`, a required `--checkpoint`).
 * @module
 */
import type { ParseArgsOptionsConfig } from "node:util";
import type { Backend } from "../../src/backend/backend.ts";
import { loadBackend, type PrecisionChoice } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { runCli } from "./main.ts";
import { HELP_OPTION, type ParsedArgs, parseFlags } from "./options.ts";

/** The parseArgs options every command that runs a network shares. */
export const NETWORK_CLI_OPTIONS = {
  json: { type: "boolean" },
  device: { type: "string" },
  precision: { type: "string" },
  deterministic: { type: "boolean" },
  ...HELP_OPTION,
} as const;

/** Help text lines of the flags. */
export const DEVICE_HELP =
  "  --device cpu|cuda|auto   where to run (default auto: CUDA when a usable NVIDIA GPU is\n" +
  "                           found, else the CPU; on a terminal it says once why not CUDA)\n" +
  "  --precision fp32|tf32|bf16|auto\n" +
  "                           how convolutions and matrix products compute (default fp32):\n" +
  "                           bf16 = bfloat16 inputs, float32 accumulation (CPUs with native\n" +
  "                           bf16); tf32 = CUDA tensor cores; auto = bf16 on such a CPU,\n" +
  "                           tf32 on CUDA, else fp32. Weights and checkpoints stay float32\n" +
  "  --deterministic          bitwise the same results run to run (deterministic cuDNN\n" +
  "                           algorithms, no atomics); the CPU backend always is";

/** The flags that choose where and how a network runs; child processes get them too. */
export interface DeviceFlags {
  /** `--device`. */
  device?: string;
  /** `--precision`. */
  precision?: string;
  /** `--deterministic`. */
  deterministic?: boolean;
}

/** Only the device flags of a command's parsed flags (what a child process is given). */
export function pickDeviceFlags(values: DeviceFlags): DeviceFlags {
  return {
    device: values.device,
    precision: values.precision,
    deterministic: values.deterministic,
  };
}

/** The `--precision` names. */
export const PRECISIONS = ["fp32", "tf32", "bf16", "auto"] as const;

/**
 * The `--precision` value checked, "fp32" when absent.
 * @throws {Error} for an unknown precision
 */
export function precisionChoice(precision: string | undefined): PrecisionChoice {
  const name = precision ?? "fp32";
  const known = PRECISIONS.find((p) => p === name);
  if (known === undefined) {
    throw new Error(`Cannot use precision "${name}": expected fp32, tf32, bf16 or auto`);
  }
  return known;
}

/** The `--device` names; "reference" (the slow pure-TS backend) is for tests, not in the help. */
export const DEVICES = ["cpu", "cuda", "auto", "reference"] as const;

/**
 * The `--device` value checked, "auto" when absent. A command that hands the device to
 * child processes (`--jobs N`) checks it first, so a typo fails once, not in every child.
 * @throws {Error} for an unknown device
 */
export function deviceName(device: string | undefined): (typeof DEVICES)[number] {
  const name = device ?? "auto";
  const known = DEVICES.find((d) => d === name);
  if (known === undefined) {
    throw new Error(`Cannot use device "${name}": expected cpu, cuda or auto`);
  }
  return known;
}

/**
 * Loads the backend for `--device`, sets its `--precision` and `--deterministic`, and
 * makes it the default. When "auto" falls back to the CPU, the reason is printed once on
 * stderr if stderr is a terminal: piped runs (scripts, tests, CI) keep stderr for errors,
 * one line each, and see the backend's name in the command's own output.
 * @throws {Error} for an unknown device or precision, a backend that cannot load, or a
 * precision it cannot compute in
 */
export async function useDevice(flags: DeviceFlags): Promise<Backend> {
  const name = deviceName(flags.device);
  const precision = precisionChoice(flags.precision);
  const onNote = (line: string) => {
    if (Deno.stderr.isTerminal()) console.error(line);
  };
  const backend = await loadBackend(name, {
    onNote,
    math: { precision, deterministic: flags.deterministic ?? false },
  });
  setDefaultBackend(backend);
  return backend;
}

/** What parseArgs gives a network command with its own `options` besides the shared ones. */
export type NetworkArgs<O extends ParseArgsOptionsConfig, P extends boolean> = ParsedArgs<
  typeof NETWORK_CLI_OPTIONS & O,
  P
>;

/** A network command's flags and help text. */
export interface NetworkCommand<O extends ParseArgsOptionsConfig, P extends boolean> {
  /** Printed for -h / --help. */
  help: string;
  /** parseArgs options besides NETWORK_CLI_OPTIONS. */
  options: O;
  /** Whether it takes positional arguments (default: none are allowed). */
  positionals?: P;
}

/**
 * Runs a command that runs a network (through {@linkcode runCli}): parses `Deno.args` with
 * NETWORK_CLI_OPTIONS and the command's own options, prints the help for -h / --help, and
 * otherwise calls `main` with the parsed flags.
 */
export function runNetworkCli<
  const O extends ParseArgsOptionsConfig,
  const P extends boolean = false,
>(
  command: NetworkCommand<O, P>,
  main: (args: NetworkArgs<O, P>) => Promise<number | void>,
): Promise<void> {
  return runCli(async () => {
    const args = parseFlags({
      args: Deno.args,
      allowPositionals: command.positionals ?? false,
      options: { ...NETWORK_CLI_OPTIONS, ...command.options },
    });
    if ((args.values as { help?: boolean }).help) {
      console.log(command.help);
      return 0;
    }
    return await main(args as NetworkArgs<O, P>);
  });
}

/**
 * The `--checkpoint FILE` a command needs.
 * @param verb what the command does, for the error ("evaluate", "predict")
 * @throws {Error} when the flag is missing
 */
export function requiredCheckpoint(values: { checkpoint?: string }, verb: string): string {
  if (!values.checkpoint) {
    throw new Error(`Cannot ${verb}: --checkpoint FILE is required (see --help)`);
  }
  return values.checkpoint;
}
