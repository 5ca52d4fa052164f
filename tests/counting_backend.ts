/** A backend wrapper that counts kernel calls by name (for "a skipped block costs nothing"). */
import type { Backend, Storage } from "../src/backend/backend.ts";
import { KERNEL_NAMES } from "../src/backend/contract.ts";
import { methodName } from "../src/backend/kernel_spec.ts";

/** The method names of the kernels (contract.ts), e.g. "conv2dForward". */
const KERNEL_METHODS: ReadonlySet<string> = new Set(KERNEL_NAMES.map((n) => methodName(n)));

/**
 * Wraps `inner`; `counts` maps each called kernel method (e.g. "conv2dForward") to its
 * number of calls. Memory methods (alloc, free, copyIn, …) pass through uncounted.
 */
export function countingBackend(inner: Backend): { backend: Backend; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (typeof prop !== "string" || !KERNEL_METHODS.has(prop)) return value.bind(target);
      return (args: unknown) => {
        counts.set(prop, (counts.get(prop) ?? 0) + 1);
        return value.call(target, args);
      };
    },
  });
  return { backend, counts };
}

/** Wraps `inner`, counting the storages allocated and not yet freed. */
export function liveCounting(inner: Backend): { backend: Backend; live: () => number } {
  const alive = new Set<Storage>();
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "alloc") {
        return (n: number) => {
          const s = (value as Backend["alloc"]).call(target, n);
          alive.add(s);
          return s;
        };
      }
      if (prop === "free") {
        return (s: Storage) => {
          alive.delete(s);
          (value as Backend["free"]).call(target, s);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { backend, live: () => alive.size };
}
