/**
 * A pool of decode workers (Deno Workers running decode_worker.ts). Requests queue in
 * order and each worker holds at most two in flight, so a worker never idles while its
 * next reply travels back, and requests are served roughly first in, first out. With
 * zero workers the same work runs inline on the calling thread.
 * @module
 */

import { BadImageError, readImage } from "./decode.ts";
import type { WorkerReply, WorkerRequest } from "./decode_worker.ts";
import { prepareImage, type PrepareRequest } from "./prepare.ts";

type Job = {
  msg: WorkerRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
};

interface Slot {
  worker: Worker;
  inFlight: Map<number, Job>;
}

const PER_WORKER = 2;

/**
 * Most decode workers a pool starts: each is a thread with its own engine (tens of MB), so
 * a typo such as `--workers 100000` is refused instead of exhausting memory.
 */
export const MAX_DECODE_WORKERS = 256;

/** Options of {@link DecodePool}. */
export interface PoolOptions {
  /** Number of workers; 0 runs everything inline (default 2). */
  workers?: number;
}

/** Decodes and prepares images on worker threads. */
export class DecodePool {
  /** Number of worker threads (0 = inline). */
  readonly workers: number;
  #slots: Slot[] = [];
  #queue: Job[] = [];
  #nextId = 0;
  #closed = false;

  /** Starts the workers. */
  constructor(options: PoolOptions = {}) {
    const n = options.workers ?? 2;
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot start decode pool: workers must be an integer ≥ 0: current value is ${n}`,
      );
    }
    if (n > MAX_DECODE_WORKERS) {
      throw new RangeError(
        `Cannot start decode pool: workers must be at most ${MAX_DECODE_WORKERS}: ` +
          `current value is ${n}`,
      );
    }
    this.workers = n;
    for (let i = 0; i < n; i++) this.#slots.push(this.#spawn());
  }

  #spawn(): Slot {
    const worker = new Worker(new URL("./decode_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const slot: Slot = { worker, inFlight: new Map() };
    worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const r = e.data;
      const job = slot.inFlight.get(r.id);
      if (!job) return;
      slot.inFlight.delete(r.id);
      if (r.ok) job.resolve(r.data);
      else job.reject(r.bad ? new BadImageError(r.bad.path, r.bad.reason) : new Error(r.error));
      this.#pump();
    };
    worker.onerror = (e: ErrorEvent) => {
      // A crashed worker fails its jobs and is replaced; the pool keeps going.
      e.preventDefault();
      const i = this.#slots.indexOf(slot);
      for (const job of slot.inFlight.values()) {
        job.reject(new Error(`Decode worker failed: ${e.message}`));
      }
      worker.terminate();
      if (i >= 0 && !this.#closed) this.#slots[i] = this.#spawn();
      this.#pump();
    };
    return slot;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let best: Slot | undefined;
      for (const s of this.#slots) {
        if (s.inFlight.size < PER_WORKER && (!best || s.inFlight.size < best.inFlight.size)) {
          best = s;
        }
      }
      if (!best) return;
      const job = this.#queue.shift()!;
      best.inFlight.set(job.msg.id, job);
      best.worker.postMessage(job.msg);
    }
  }

  #submit<T>(msg: WorkerRequest, inline: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("Cannot use decode pool: it is closed"));
    if (this.workers === 0) return inline();
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ msg, resolve: resolve as (v: unknown) => void, reject });
      this.#pump();
    });
  }

  /**
   * Prepares one image (decode, resize, crop, normalise) as (3, size, size) floats.
   * @throws {BadImageError} When the image is missing, empty or corrupt.
   */
  prepare(request: PrepareRequest): Promise<Float32Array> {
    return this.#submit(
      { id: this.#nextId++, op: "prepare", request },
      () => prepareImage(request),
    );
  }

  /**
   * Decodes an image only, returning its size: a check that it is readable.
   * @throws {BadImageError} When the image is missing, empty or corrupt.
   */
  check(path: string): Promise<{ width: number; height: number }> {
    return this.#submit({ id: this.#nextId++, op: "check", path }, async () => {
      const img = await readImage(path);
      return { width: img.width, height: img.height };
    });
  }

  /** Stops the workers; queued and running requests are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new Error("Cannot finish decode request: the pool was closed");
    for (const job of this.#queue) job.reject(err);
    this.#queue = [];
    for (const s of this.#slots) {
      for (const job of s.inFlight.values()) job.reject(err);
      s.worker.terminate();
    }
    this.#slots = [];
  }
}
