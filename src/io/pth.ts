/**
 * Reads PyTorch state dicts saved with `torch.save` (the zip format, PyTorch ≥ 1.6):
 * `<archive>/data.pkl` is a pickle of an OrderedDict whose tensors are
 * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls, and each
 * storage is a persistent id `("storage", torch.FloatStorage, "<key>", "cpu", numel)` whose
 * bytes are the zip entry `<archive>/data/<key>`.
 *
 * A `.pth` is a program (see unpickle.ts); this reader runs it under an allow-list of the
 * globals a state dict needs and never executes Python. Storage sizes, offsets and strides
 * are checked against the storage entry before any copy; a tensor may not have more
 * elements than its storage (no stride-0 expansion). Memory stays proportional to the file:
 * outputs (shared storages are copied per tensor) and inflated entries each stay within 4×
 * the file size, and the pickle may create at most 10^6 + size/64 values.
 *
 * Every tensor is returned as float32 with its stored dtype: float32 is copied, float16 and
 * bfloat16 widen exactly, int64 (BatchNorm's `num_batches_tracked` in torchvision weights)
 * rounds to the nearest float32; other dtypes are refused naming the tensor.
 * @module
 */

import {
  decodeToFloat32,
  DTYPE_SIZE,
  type WeightsDtype,
  type WeightsTensor,
} from "./weights_tensor.ts";
import {
  type AllowedGlobal,
  describePython,
  PyDict,
  PyGlobal,
  type PyOpaque,
  PyTuple,
  type PyValue,
  unpickle,
} from "./unpickle.ts";
import { quote, WeightsFormatError } from "./weights_format_error.ts";
import { ZipArchive } from "./zip.ts";

/** Options of {@linkcode parsePth}. */
export interface ReadPthOptions {
  /** Name of the source used in error messages (a path); defaults to `"<bytes>"`. */
  source?: string;
}

interface StorageType {
  /** The dtype this reader returns, absent when the type is refused. */
  dtype?: WeightsDtype;
  /** torch's dtype name for messages. */
  torch: string;
  /** Bytes per element. */
  size: number;
}

// The legacy storage classes torch.save names in persistent ids (torch/storage.py).
const STORAGE_TYPES: Record<string, StorageType> = {
  FloatStorage: { dtype: "F32", torch: "float32", size: 4 },
  HalfStorage: { dtype: "F16", torch: "float16", size: 2 },
  BFloat16Storage: { dtype: "BF16", torch: "bfloat16", size: 2 },
  LongStorage: { dtype: "I64", torch: "int64", size: 8 },
  DoubleStorage: { torch: "float64", size: 8 },
  IntStorage: { torch: "int32", size: 4 },
  ShortStorage: { torch: "int16", size: 2 },
  CharStorage: { torch: "int8", size: 1 },
  ByteStorage: { torch: "uint8", size: 1 },
  BoolStorage: { torch: "bool", size: 1 },
  ComplexFloatStorage: { torch: "complex64", size: 8 },
  ComplexDoubleStorage: { torch: "complex128", size: 16 },
  QInt8Storage: { torch: "qint8", size: 1 },
  QUInt8Storage: { torch: "quint8", size: 1 },
  QInt32Storage: { torch: "qint32", size: 4 },
  QUInt4x2Storage: { torch: "quint4x2", size: 1 },
  QUInt2x4Storage: { torch: "quint2x4", size: 1 },
};

const LEGACY_HINT = "Hint: load it with PyTorch and re-save it in the zip format " +
  "(the default since PyTorch 1.6): torch.save(torch.load(path), new_path)";

/** A storage reference from a persistent id. */
class StorageRef implements PyOpaque {
  readonly pythonType = "torch.Storage";
  constructor(readonly key: string, readonly type: string, readonly numel: number) {}
}

/** A tensor view of a storage, as `_rebuild_tensor_v2` describes it. */
class TensorRef implements PyOpaque {
  readonly pythonType = "torch.Tensor";
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

type Fail = (detail: string, key?: string) => never;

/**
 * Parses the bytes of a `torch.save` zip file holding a state dict (a dict of tensors).
 * @param bytes the whole file
 * @param options `source` names the file in error messages
 * @returns every tensor by key, in the file's order, as float32 with its stored dtype
 * @throws {WeightsFormatError} when the file is not a valid zip `.pth`, references a global
 *   outside the allow-list, holds something other than tensors, or a tensor has a dtype
 *   other than float32, float16, bfloat16, int64
 */
export async function parsePth(
  bytes: Uint8Array,
  options: ReadPthOptions = {},
): Promise<Map<string, WeightsTensor>> {
  const file = options.source ?? "<bytes>";
  const fail: Fail = (detail, key) => {
    throw new WeightsFormatError(`Cannot read .pth file "${file}": ${detail}`, { file, key });
  };
  checkSignature(bytes, fail);
  const budget = 4 * bytes.length + 65536;
  const zip = ZipArchive.open(bytes, { source: file, what: ".pth file" });
  // Deflated entries (torch writes none, other zip tools may) count against the same bound.
  let inflated = 0;
  for (const entry of zip.entries.values()) {
    if (entry.method !== 0) inflated += entry.uncompressedSize;
  }
  if (inflated > budget) {
    fail(`its compressed entries inflate to ${inflated} bytes, more than 4× the file size`);
  }
  const prefix = archivePrefix(zip, fail);
  await checkVersionEntries(zip, prefix, fail);

  const persistentLoad = storageLoader(zip, prefix, fail);
  const root = unpickle(await zip.read(`${prefix}/data.pkl`), {
    globals: allowedGlobals(fail),
    persistentLoad,
    fail,
    // State dicts need ~25 values per tensor; the bound grows with the file (see module doc).
    maxValues: 1_000_000 + Math.floor(bytes.length / 64),
  });
  if (!(root instanceof PyDict)) {
    fail(
      `the pickle holds ${describePython(root)}, not a state dict: Hint: save ` +
        `model.state_dict()`,
    );
  }

  let produced = 0;
  const storageBytes = new Map<string, Uint8Array>();
  const out = new Map<string, WeightsTensor>();
  for (const [key, value] of (root as PyDict).map) {
    if (typeof key !== "string") fail(`the state dict has ${describePython(key)} key`);
    const name = key as string;
    if (!(value instanceof TensorRef)) {
      return fail(
        `value of ${quote(name)} is ${describePython(value)}, not a tensor: only state dicts (a ` +
          `dict of tensors) can be read: Hint: save model.state_dict()`,
        name,
      );
    }
    const count = checkView(name, value, fail);
    // 64 bytes per tensor stands for the record itself, so 10^6 empty tensors count too.
    produced += 4 * count + 64;
    if (produced > budget) {
      fail(`tensors total more than ${budget} bytes, 4× the file size`, name);
    }
    const { key: storageKey, type } = value.storage;
    let raw = storageBytes.get(storageKey);
    if (!raw) {
      raw = await zip.read(`${prefix}/data/${storageKey}`);
      storageBytes.set(storageKey, raw);
    }
    const dtype = STORAGE_TYPES[type].dtype as WeightsDtype;
    out.set(name, { dtype, shape: [...value.size], data: gather(raw, dtype, value, count) });
  }
  return out;
}

/**
 * Returns the BINPERSID handler: each `("storage", torch.<Type>Storage, key, location,
 * numel)` must name a storage class and an entry `<archive>/data/<key>` of exactly
 * numel × element-size bytes; a key seen again must agree with its first use.
 */
function storageLoader(zip: ZipArchive, prefix: string, fail: Fail): (pid: PyValue) => PyValue {
  const storages = new Map<string, StorageRef>();
  return (pid) => {
    const parts = pid instanceof PyTuple ? pid.items : [];
    const [tag, type, key, location, numel] = parts;
    if (
      parts.length !== 5 || tag !== "storage" || !(type instanceof PyGlobal) ||
      typeof key !== "string" || typeof location !== "string"
    ) {
      return fail("pickle has a persistent id that is not a storage reference");
    }
    if (type.module !== "torch" || !Object.hasOwn(STORAGE_TYPES, type.name)) {
      return fail(`storage type ${type.module}.${type.name} is not a torch storage class`);
    }
    const info = STORAGE_TYPES[type.name];
    const count = index(numel, `storage ${quote(key)} element count`, fail);
    const known = storages.get(key);
    if (known) {
      if (known.type !== type.name || known.numel !== count) {
        fail(`storage ${quote(key)} is referenced with two different types or sizes`);
      }
      return known;
    }
    const name = `${prefix}/data/${key}`;
    const entry = zip.entries.get(name);
    if (!entry) return fail(`storage ${quote(key)} has no entry ${quote(name)}`);
    const expected = count * info.size;
    if (entry.uncompressedSize !== expected) {
      fail(
        `storage ${quote(key)} holds ${entry.uncompressedSize} bytes, expected ${expected} ` +
          `(${count} ${info.torch} elements)`,
      );
    }
    const ref = new StorageRef(key, type.name, count);
    storages.set(key, ref);
    return ref;
  };
}

/**
 * Reads a `torch.save` zip file holding a state dict.
 * @param path the file
 * @returns every tensor by key, as float32 with its stored dtype
 * @throws {WeightsFormatError} when the file is not valid (the message names the path)
 * @throws {Deno.errors.NotFound} and other I/O errors from reading the file
 */
export async function readPth(path: string): Promise<Map<string, WeightsTensor>> {
  return await parsePth(await Deno.readFile(path), { source: path });
}

/** Refuses non-zip inputs, recognising the legacy torch.save formats. */
function checkSignature(bytes: Uint8Array, fail: Fail): void {
  const zip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
  if (zip) return;
  const pickle = bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5;
  const tar = bytes.length >= 262 &&
    String.fromCharCode(...bytes.subarray(257, 262)) === "ustar";
  if (pickle || tar) {
    fail(
      `it uses the legacy (before PyTorch 1.6) torch.save format, which is not supported: ${LEGACY_HINT}`,
    );
  }
  fail("it is not a zip archive (a .pth must be written by torch.save in PyTorch ≥ 1.6)");
}

/** Finds the single `<archive>/data.pkl` and refuses TorchScript archives. */
function archivePrefix(zip: ZipArchive, fail: Fail): string {
  const prefixes = [...zip.entries.keys()]
    .map((name) => /^([^/]+)\/data\.pkl$/.exec(name)?.[1])
    .filter((p) => p !== undefined);
  if (prefixes.length !== 1) {
    fail(
      `it has ${prefixes.length} "<archive>/data.pkl" entries, expected 1: not a file ` +
        `written by torch.save`,
    );
  }
  const prefix = prefixes[0] as string;
  if (zip.has(`${prefix}/constants.pkl`)) {
    fail(
      "it is a TorchScript archive (torch.jit.save), not a state dict: Hint: save " +
        "model.state_dict() with torch.save",
    );
  }
  return prefix;
}

/** Checks the optional `version` and `byteorder` entries. */
async function checkVersionEntries(zip: ZipArchive, prefix: string, fail: Fail): Promise<void> {
  for (const name of [`${prefix}/version`, `${prefix}/.data/version`]) {
    if (!zip.has(name)) continue;
    const text = new TextDecoder().decode(await zip.read(name)).trim();
    if (!/^[0-9]{1,9}$/.test(text)) fail(`entry ${quote(name)} is not a version number`);
  }
  const byteorder = `${prefix}/byteorder`;
  if (zip.has(byteorder)) {
    const order = new TextDecoder().decode(await zip.read(byteorder)).trim();
    if (order !== "little") {
      fail(`it was written with byte order ${quote(order)}: only "little" is supported`);
    }
  }
}

/** The globals a state dict needs, bound to TypeScript stand-ins. */
function allowedGlobals(fail: Fail): AllowedGlobal[] {
  const rebuildTensor = (args: readonly PyValue[]): PyValue => {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args.length !== 6 && args.length !== 7) {
      fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
    }
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof StorageRef)) {
      return fail(`_rebuild_tensor_v2 got ${describePython(storage)} instead of a storage`);
    }
    const dims = indexTuple(size, "size", fail);
    const steps = indexTuple(stride, "stride", fail);
    if (dims.length !== steps.length) {
      fail(`tensor size has ${dims.length} dimensions but its stride has ${steps.length}`);
    }
    return new TensorRef(storage, index(offset, "storage offset", fail), dims, steps);
  };
  const rebuildParameter = (args: readonly PyValue[]): PyValue => {
    // (data, requires_grad, backward_hooks): a Parameter is its tensor for our purposes.
    if (args.length !== 3 || !(args[0] instanceof TensorRef)) {
      fail("_rebuild_parameter needs (tensor, requires_grad, backward_hooks)");
    }
    return args[0];
  };
  const orderedDict = (args: readonly PyValue[]): PyValue => {
    if (args.length !== 0) fail("collections.OrderedDict is called with arguments");
    return new PyDict();
  };
  return [
    { module: "collections", name: "OrderedDict", call: orderedDict },
    { module: "torch._utils", name: "_rebuild_tensor_v2", call: rebuildTensor },
    { module: "torch._utils", name: "_rebuild_parameter", call: rebuildParameter },
    // Storage classes are only markers inside persistent ids, never called.
    ...Object.keys(STORAGE_TYPES).map((name) => ({ module: "torch", name })),
  ];
}

/** Reads a non-negative safe integer from the pickle. */
function index(value: PyValue, what: string, fail: Fail): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    return fail(`${what} is not a non-negative integer: current value is ${String(value)}`);
  }
  return value;
}

/** Reads a tuple of non-negative safe integers from the pickle. */
function indexTuple(value: PyValue, what: string, fail: Fail): number[] {
  if (!(value instanceof PyTuple)) {
    return fail(`_rebuild_tensor_v2 got a ${what} that is ${describePython(value)}, not a tuple`);
  }
  return value.items.map((v) => index(v, `tensor ${what} entry`, fail));
}

/**
 * Checks a tensor's dtype and that its view stays inside its storage.
 * @returns the element count
 */
function checkView(key: string, t: TensorRef, fail: Fail): number {
  const bad = (detail: string): never => fail(`tensor ${quote(key)} ${detail}`, key);
  const info = STORAGE_TYPES[t.storage.type];
  if (!info.dtype) {
    bad(
      `has dtype ${info.torch} (torch.${t.storage.type}), which is not supported: supported ` +
        `dtypes are float32, float16, bfloat16, int64`,
    );
  }
  let count = 1;
  let last = t.offset;
  for (let d = 0; d < t.size.length; d++) {
    count *= t.size[d];
    last += t.size[d] === 0 ? 0 : (t.size[d] - 1) * t.stride[d];
    if (count > Number.MAX_SAFE_INTEGER || last > Number.MAX_SAFE_INTEGER) {
      bad(`has size [${t.size}] and stride [${t.stride}] that overflow`);
    }
  }
  if (count === 0) return 0;
  const { key: storageKey, numel } = t.storage;
  if (last >= numel) {
    bad(
      `reads storage ${quote(storageKey)} up to element ${last}, but the storage holds ${numel} ` +
        `elements (offset ${t.offset}, size [${t.size}], stride [${t.stride}])`,
    );
  }
  if (count > numel) {
    bad(
      `has ${count} elements but its storage holds ${numel}: expanded (stride 0) tensors ` +
        `are not supported: Hint: save tensor.contiguous()`,
    );
  }
  return count;
}

/** Copies a (possibly strided) view out of its storage bytes into a row-major array. */
function gather(raw: Uint8Array, dtype: WeightsDtype, t: TensorRef, count: number): Float32Array {
  if (count === 0) return new Float32Array(0);
  const base = raw.subarray(t.offset * DTYPE_SIZE[dtype]);
  let contiguous = true;
  let span = 1;
  let expected = 1;
  for (let d = t.size.length - 1; d >= 0; d--) {
    // A dimension of size 1 may carry any stride.
    if (t.size[d] !== 1 && t.stride[d] !== expected) contiguous = false;
    expected *= t.size[d];
    span += (t.size[d] - 1) * t.stride[d];
  }
  if (contiguous) return decodeToFloat32(base, dtype, count);
  const source = decodeToFloat32(base, dtype, span);
  const out = new Float32Array(count);
  const rank = t.size.length;
  const position = new Array<number>(rank).fill(0);
  let at = 0;
  for (let i = 0; i < count; i++) {
    out[i] = source[at];
    // Odometer over the dimensions, innermost fastest.
    for (let d = rank - 1; d >= 0; d--) {
      at += t.stride[d];
      if (++position[d] < t.size[d]) break;
      at -= t.stride[d] * t.size[d];
      position[d] = 0;
    }
  }
  return out;
}
