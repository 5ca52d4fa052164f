/**
 * The local web page of `deno task serve`: Deno's HTTP server, no framework. Routes:
 * `GET /` the page ({@link ./page.ts}); `GET /api/model` the model's description
 * ({@linkcode ModelInfo}); `POST /api/predict` with an image file as the body (its type in
 * `Content-Type`, its name URI-encoded in `X-File-Name`) answers `{image, tasks}` where
 * `tasks` is `predict --json`'s object for that image. The image goes through
 * {@linkcode predictImages}, the code `deno task predict` runs, so the preprocessing
 * (decoding, resizing, normalisation) and the numbers are the same.
 *
 * A bad upload (not an image, a type other than JPEG or PNG, empty, too large, damaged) is
 * answered with a 4xx status and `{error}`, one sentence the page shows; any other failure
 * with 500 and `{error}`. The server keeps serving after either.
 *
 * Only this machine's pages may use it. A request whose `Host` is not the server's own
 * address (127.0.0.1, localhost or [::1] with its port) is refused with 403: a page of
 * another site whose name is made to resolve to 127.0.0.1 (DNS rebinding) still sends its
 * own name. An upload without `X-File-Name` is refused with 400: a custom header makes a
 * browser ask first (a CORS preflight, OPTIONS), which this server never allows, so another
 * site's page cannot post an image at all. At most {@linkcode MAX_PENDING_UPLOADS} uploads
 * are read or predicted at once; more are answered 503 before their bytes are read.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { BadImageError } from "../data/decode.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { predictImages } from "../train/predict.ts";
import { PAGE_HTML } from "./page.ts";

/** Largest upload accepted by default, in bytes (a phone photo is a few MB). */
export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

/**
 * Uploads handled at once (read, waiting for the model, or predicting); more are refused
 * with 503. Each may hold up to the upload limit in memory while predictions run one at a
 * time, so this bounds the server's memory at about 4 × 20 MB.
 */
export const MAX_PENDING_UPLOADS = 4;

/** One task as the page shows it. */
export interface TaskInfo {
  /** Task name (the key of predictions). */
  name: string;
  /** The database whose BN copy the task uses. */
  database: string;
  /** Class names by label: the run's names from metrics.json, else "0", "1", …. */
  classes: string[];
}

/** One task's test metrics in the run summary (fractions 0–1). */
export interface SummaryRow {
  /** Task name. */
  task: string;
  /** Accuracy. */
  accuracy: number;
  /** F1 weighted by class support. */
  f1Weighted: number;
  /** Unweighted mean of per-class F1. */
  f1Macro: number;
  /** Images evaluated. */
  count: number;
}

/** The run summary: from a training run's metrics.json, or one that `eval --out` wrote. */
export interface RunSummary {
  /** Run name (training runs). */
  name?: string;
  /** "adashare" or "baseline" (training runs). */
  method?: string;
  /** The split the metrics are on ("test" for training runs). */
  split?: string;
  /** Training wall time in seconds (training runs). */
  trainSeconds?: number;
  /** Metrics per task. */
  tasks: SummaryRow[];
}

/** What `GET /api/model` answers. */
export interface ModelInfo {
  /** The checkpoint's file name. */
  checkpoint: string;
  /** The tasks, in the network's order. */
  tasks: TaskInfo[];
  /** Block names ("layer1.0" … "layer4.1"). */
  blocks: string[];
  /** The evaluation policy: task → 1 (execute) / 0 (skip) per block. */
  policy: Record<string, number[]>;
  /** Whether the blocks fuse with AFF. */
  aff: boolean;
  /** Batch-norm sharing. */
  bn: string;
  /** Input side the images are resized to. */
  imageSize: number;
  /** Largest upload accepted, in bytes. */
  maxUploadBytes: number;
  /** The run summary, or null when there is none. */
  summary: RunSummary | null;
  /** Why there is no summary, when a metrics.json exists but cannot be read. */
  summaryNote?: string;
}

type Json = Record<string, unknown>;

function summaryRow(task: string, m: unknown): SummaryRow | null {
  const o = (m ?? {}) as Json;
  const nums = [o.accuracy, o.f1_weighted, o.f1_macro, o.count];
  if (nums.some((v) => typeof v !== "number")) return null;
  return {
    task,
    accuracy: o.accuracy as number,
    f1Weighted: o.f1_weighted as number,
    f1Macro: o.f1_macro as number,
    count: o.count as number,
  };
}

/**
 * Reads the metrics.json beside a checkpoint: a training run's (per task `test` metrics)
 * or `eval --out`'s (`{split, tasks}`). Class names come from the same file.
 * @returns null summary and no note when there is no such file
 */
export async function readRunSummary(
  checkpoint: string,
): Promise<{ summary: RunSummary | null; note?: string; classes: Record<string, string[]> }> {
  const path = join(dirname(checkpoint), "metrics.json");
  let raw: Json;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { summary: null, classes: {} };
    return { summary: null, note: `Cannot read "${path}": ${(e as Error).message}`, classes: {} };
  }
  const tasks = (raw?.tasks ?? {}) as Json;
  const rows: SummaryRow[] = [];
  const classes: Record<string, string[]> = {};
  for (const [task, entry] of Object.entries(tasks)) {
    const e = (entry ?? {}) as Json;
    // A training run keeps the test metrics under "test"; eval --out keeps them flat.
    const m = (e.test ?? e) as Json;
    const row = summaryRow(task, m);
    if (row) rows.push(row);
    if (Array.isArray(m.classes) && m.classes.every((c) => typeof c === "string")) {
      classes[task] = m.classes as string[];
    }
  }
  if (rows.length === 0) {
    return {
      summary: null,
      note:
        `Cannot read "${path}": it holds no task metrics (accuracy, f1_weighted, f1_macro, count)`,
      classes,
    };
  }
  const str = (v: unknown) => typeof v === "string" ? v : undefined;
  return {
    summary: {
      name: str(raw.name),
      method: str(raw.method),
      split: str(raw.split) ?? (raw.method ? "test" : undefined),
      trainSeconds: typeof raw.trainSeconds === "number" ? raw.trainSeconds : undefined,
      tasks: rows,
    },
    classes,
  };
}

/**
 * The page's description of a network loaded from `checkpoint` (its config and evaluation
 * policy, and the run summary beside the file).
 */
export async function describeModel(
  net: MultiTaskNet,
  checkpoint: string,
  opts: { maxUploadBytes?: number } = {},
): Promise<ModelInfo> {
  const { summary, note, classes } = await readRunSummary(checkpoint);
  const c = net.config;
  return {
    checkpoint: basename(checkpoint),
    tasks: c.tasks.map((t) => ({
      name: t.name,
      database: t.database,
      classes: classes[t.name]?.length === t.classes
        ? classes[t.name]
        : Array.from({ length: t.classes }, (_, k) => String(k)),
    })),
    blocks: [...net.gateNames],
    policy: net.evalPolicy(),
    aff: c.aff,
    bn: c.bn,
    imageSize: c.imageSize ?? 224,
    maxUploadBytes: opts.maxUploadBytes ?? MAX_UPLOAD_BYTES,
    summary,
    ...(note ? { summaryNote: note } : {}),
  };
}

/** A refused upload: the HTTP status and the sentence the page shows. */
class UploadError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "UploadError";
  }
}

const ACCEPTED = new Map([["image/jpeg", ".jpg"], ["image/png", ".png"]]);

function megabytes(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MB`;
}

/** The upload's file name from X-File-Name (URI-encoded), or "" without one. */
function uploadName(req: Request): string {
  const raw = req.headers.get("x-file-name") ?? "";
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    name = raw;
  }
  return basename(name).slice(0, 120);
}

/**
 * The upload's type, checked before its bytes are read: JPEG and PNG pass; an unnamed type
 * (`application/octet-stream` or none) is left for the decoder, which reads the bytes' own
 * signature; anything else is refused with what it is.
 */
function checkType(req: Request, name: string): string {
  const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const ext = ACCEPTED.get(type);
  if (ext) return ext;
  if (type === "" || type === "application/octet-stream") return ".img";
  if (type.startsWith("image/")) {
    throw new UploadError(
      415,
      `Cannot use ${name}: it is a ${type.slice(6).toUpperCase()} image (${type}); ` +
        "fbp reads JPEG and PNG photos",
    );
  }
  throw new UploadError(
    415,
    `Cannot use ${name}: it is not an image (its type is ${type}); pick a JPEG or PNG face photo`,
  );
}

/** Reads the request body, refusing it as soon as it passes `limit` bytes. */
async function readBody(req: Request, name: string, limit: number): Promise<Uint8Array> {
  const tooLarge = (size: string) =>
    new UploadError(
      413,
      `Cannot use ${name}: it is ${size}, more than the limit of ${megabytes(limit)}`,
    );
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) throw tooLarge(megabytes(declared));
  if (!req.body) throw new UploadError(400, `Cannot use ${name}: it is empty (0 bytes)`);
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.length;
    if (size > limit) throw tooLarge(`over ${megabytes(limit)}`);
    parts.push(chunk);
  }
  if (size === 0) throw new UploadError(400, `Cannot use ${name}: it is empty (0 bytes)`);
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return bytes;
}

/** Options of {@linkcode serveModel}. */
export interface ServeOptions {
  /** Port (0 = any free port; default 8000). */
  port?: number;
  /**
   * Address to listen on (default 127.0.0.1: the page is local). Requests must name it, or
   * a loopback name, in `Host`: a wildcard address (0.0.0.0) does not open the page to
   * other machines.
   */
  hostname?: string;
  /** Largest upload accepted, in bytes (default {@linkcode MAX_UPLOAD_BYTES}). */
  maxUploadBytes?: number;
  /** Called once the server listens, with the page's URL. */
  onListen?: (url: string) => void;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });

/** The `Host` values of a server on this machine's loopback names at `port`. */
function loopbackHosts(port: number): ReadonlySet<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

/**
 * The request handler of the page for `net` described by `info` (exported for tests and
 * for embedding in another server). Predictions run one at a time; at most
 * {@linkcode MAX_PENDING_UPLOADS} uploads are taken at once.
 * @param opts.hosts the `Host` values the page answers to ("127.0.0.1:8000"), read at each
 *   request (a server on port 0 knows its port only once it listens); a request naming
 *   another host is refused with 403. Default: any host (the embedding server checks it).
 */
export function modelHandler(
  net: MultiTaskNet,
  info: ModelInfo,
  opts: { hosts?: () => ReadonlySet<string> } = {},
): (req: Request) => Promise<Response> {
  let queue: Promise<unknown> = Promise.resolve();
  let pending = 0;
  const predict = async (req: Request): Promise<Response> => {
    if (!req.headers.has("x-file-name")) {
      throw new UploadError(
        400,
        "Cannot predict: the upload has no X-File-Name header (the page sends one; other " +
          "sites' pages cannot)",
      );
    }
    const image = uploadName(req);
    const name = image ? `"${image}"` : "the upload";
    const ext = checkType(req, name);
    if (pending >= MAX_PENDING_UPLOADS) {
      throw new UploadError(
        503,
        `Cannot take ${name} now: ${pending} uploads are already being handled, the most ` +
          "at once; try again in a moment",
      );
    }
    pending++;
    let file: string | undefined;
    try {
      const bytes = await readBody(req, name, info.maxUploadBytes);
      // predictImages reads files, as deno task predict does: the upload becomes one, briefly.
      file = await Deno.makeTempFile({ prefix: "fbp-serve-", suffix: ext });
      await Deno.writeFile(file, bytes);
      const path = file;
      const run = queue.then(() => predictImages(net, [path]));
      queue = run.catch(() => undefined);
      const [result] = await run;
      return json({ image, tasks: result.tasks });
    } catch (e) {
      if (e instanceof BadImageError) throw new UploadError(422, `Cannot use ${name}: ${e.reason}`);
      throw e;
    } finally {
      pending--;
      if (file) {
        await Deno.remove(file).catch((e) =>
          console.error(`Cannot remove temporary file "${file}": ${e.message}`)
        );
      }
    }
  };
  return async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const hosts = opts.hosts?.();
    const host = req.headers.get("host") ?? "";
    if (hosts && !hosts.has(host.toLowerCase())) {
      return json({
        error: `Cannot answer a request for host "${host}": this page answers only ${
          [...hosts].map((h) => `"${h}"`).join(", ")
        }`,
      }, 403);
    }
    try {
      if (req.method === "GET" && path === "/") {
        return new Response(PAGE_HTML, { headers: { "content-type": "text/html; charset=utf-8" } });
      }
      if (req.method === "GET" && path === "/api/model") return json(info);
      if (path === "/api/predict") {
        if (req.method !== "POST") {
          return json(
            { error: `Cannot ${req.method} /api/predict: send the image with POST` },
            405,
          );
        }
        return await predict(req);
      }
      return json({ error: `Cannot find ${path}: the page is at /` }, 404);
    } catch (e) {
      if (e instanceof UploadError) return json({ error: e.message }, e.status);
      console.error(`error: ${req.method} ${path}: ${(e as Error).message}`);
      return json({ error: `The server failed on this request: ${(e as Error).message}` }, 500);
    }
  };
}

/**
 * Serves the page for `net` (loaded from `checkpoint`) until `opts.signal` aborts, to
 * requests that name it as 127.0.0.1, localhost, [::1] or `opts.hostname`, with its port.
 * @param checkpoint the file `net` was loaded from: the page shows its name and the
 * metrics.json beside it
 * @returns the running server (`finished` settles when it stops)
 * @throws {Deno.errors.AddrInUse} when the port is taken
 * @example Serve a trained run's checkpoint on a free port
 * ```ts ignore
 * import { loadBackend, loadCheckpoint, setDefaultBackend } from "../../mod.ts";
 * import { serveModel } from "./server.ts";
 * setDefaultBackend(await loadBackend("cpu"));
 * const checkpoint = "runs/demo/checkpoint.safetensors";
 * const net = await loadCheckpoint(checkpoint);
 * const server = await serveModel(net, checkpoint, { port: 0, onListen: console.log });
 * await server.finished;
 * ```
 */
export async function serveModel(
  net: MultiTaskNet,
  checkpoint: string,
  opts: ServeOptions = {},
): Promise<Deno.HttpServer<Deno.NetAddr>> {
  const info = await describeModel(net, checkpoint, { maxUploadBytes: opts.maxUploadBytes });
  const hostname = opts.hostname ?? "127.0.0.1";
  const named = (host: string) => host.includes(":") ? `[${host}]` : host;
  let hosts: ReadonlySet<string> = new Set();
  return Deno.serve({
    port: opts.port ?? 8000,
    hostname,
    signal: opts.signal,
    onListen: ({ port }) => {
      hosts = new Set([...loopbackHosts(port), `${named(hostname).toLowerCase()}:${port}`]);
      opts.onListen?.(`http://${named(hostname)}:${port}/`);
    },
  }, modelHandler(net, info, { hosts: () => hosts }));
}
