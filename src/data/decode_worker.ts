/**
 * Decode worker: runs {@link prepareImage} (or a decode check) for the main thread.
 * Messages in: `{id, op: "prepare", request}` or `{id, op: "check", path}`; out:
 * `{id, ok: true, data}` (a transferred Float32Array, or `{width, height}`) or
 * `{id, ok: false, error, bad?}` where `bad` (path and reason) marks a bad image rather
 * than a bug.
 * @module
 */

import { BadImageError, readImage } from "./decode.ts";
import { prepareImage, type PrepareRequest } from "./prepare.ts";

/** A message to the worker. */
export type WorkerRequest =
  | { id: number; op: "prepare"; request: PrepareRequest }
  | { id: number; op: "check"; path: string };

/** A reply from the worker. */
export type WorkerReply =
  | { id: number; ok: true; data: Float32Array | { width: number; height: number } }
  | { id: number; ok: false; error: string; bad?: { path: string; reason: string } };

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(msg: WorkerReply, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  const msg = e.data;
  try {
    if (msg.op === "prepare") {
      const data = await prepareImage(msg.request);
      scope.postMessage({ id: msg.id, ok: true, data }, [data.buffer as ArrayBuffer]);
    } else {
      const img = await readImage(msg.path);
      scope.postMessage({ id: msg.id, ok: true, data: { width: img.width, height: img.height } });
    }
  } catch (err) {
    scope.postMessage({
      id: msg.id,
      ok: false,
      error: err instanceof Error ? err.message : String(err),
      bad: err instanceof BadImageError ? { path: err.path, reason: err.reason } : undefined,
    });
  }
};
