/**
 * `deno task build`: builds the native backend libraries that are out of date.
 *
 * Usage: deno run -A tasks/build.ts [--quiet] [--force] [--help]
 * @module
 */
import { parseArgs } from "node:util";
import { buildCpuLibrary, type BuildResult, displayPath } from "../src/backend/native_build.ts";

/** A native library this task knows how to build. */
interface Target {
  name: string;
  build(options: { quiet: boolean; force: boolean }): Promise<BuildResult>;
}

const TARGETS: Target[] = [
  { name: "cpu", build: (o) => buildCpuLibrary(o) },
];

const HELP = `Builds the native backend libraries (native/build/) when their sources changed.

Usage: deno task build [--quiet] [--force]

  --quiet   print nothing unless the build fails
  --force   rebuild even when up to date
  --help    show this help`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quiet: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  for (const t of TARGETS) {
    const r = await t.build({ quiet: values.quiet, force: values.force });
    if (!values.quiet) {
      const what = r.built ? `built in ${r.seconds.toFixed(1)} s` : "up to date";
      console.log(`${t.name}: ${displayPath(r.path)} ${what}`);
    }
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
