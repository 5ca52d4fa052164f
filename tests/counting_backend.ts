/** A backend wrapper that counts kernel calls by name (for "a skipped block costs nothing"). */
import type { Backend } from "../src/backend/backend.ts";

/** Wraps `inner`; `counts` maps each called method to its number of calls. */
export function countingBackend(inner: Backend): { backend: Backend; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        counts.set(prop, (counts.get(prop) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { backend, counts };
}
