/**
 * Differentiable ops: each checks its arguments, calls one backend kernel, and records
 * its backward rule. Composite ops (AFF fusion, Gumbel gating) are built from these.
 * @module
 */
export * from "./elementwise.ts";
export * from "./shape.ts";
export * from "./conv.ts";
export * from "./batch_norm.ts";
export * from "./pool.ts";
export * from "./linear.ts";
export * from "./softmax.ts";
export * from "./dropout.ts";
export * from "./aff.ts";
export * from "./channels.ts";
export * from "./losses.ts";
