/**
 * A restricted pickle interpreter (the opcodes of protocols 2 and 4 that `torch.save` emits
 * for state dicts). A pickle is a program: GLOBAL imports any Python callable and REDUCE
 * calls it, which is how a hostile `.pth` runs `os.system`. Here nothing is ever imported;
 * GLOBAL resolves only names from the caller's allow-list, to the caller's own TypeScript
 * functions, and refuses any other name when it is read, before anything is called.
 *
 * Values: None → null, bool, int → number (bigint beyond 2^53), float, str, tuple →
 * {@linkcode PyTuple}, list → {@linkcode PyList}, dict → {@linkcode PyDict}; allowed
 * callables return whatever the caller builds. Every read is bounds-checked and every
 * opcode consumes input, so a pickle runs in time and memory linear in its length.
 * @module
 */

import { quote } from "./weights_format_error.ts";

/** A Python tuple. */
export class PyTuple {
  /**
   * Wraps the items.
   * @param items the tuple's items
   */
  constructor(readonly items: readonly PyValue[]) {}
}

/** A Python list. */
export class PyList {
  /** The list's items. */
  readonly items: PyValue[] = [];
}

/** A Python dict or `collections.OrderedDict` (insertion order is kept either way). */
export class PyDict {
  /** Entries in insertion order; keys are None, bool, int, float or str. */
  readonly map: Map<PyKey, PyValue> = new Map();
}

/** A global that the allow-list resolved (e.g. a storage type marker). */
export class PyGlobal {
  /**
   * Records the resolved name.
   * @param module the Python module
   * @param name the attribute name
   * @param call the TypeScript stand-in that REDUCE calls, if it may be called
   */
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly PyValue[]) => PyValue,
  ) {}
}

/** An object built by an allowed callable; `pythonType` names it in messages. */
export interface PyOpaque {
  /** The Python type this stands for, e.g. `"torch.Tensor"`. */
  readonly pythonType: string;
}

/** Hashable values usable as dict keys. */
export type PyKey = null | boolean | number | bigint | string;
/** Any value the interpreter produces. */
export type PyValue = PyKey | PyTuple | PyList | PyDict | PyGlobal | PyOpaque;

/** A global that a pickle may reference. */
export interface AllowedGlobal {
  /** Python module, e.g. `"collections"`. */
  module: string;
  /** Attribute name, e.g. `"OrderedDict"`. */
  name: string;
  /** The stand-in REDUCE calls with the argument tuple; absent for value-only globals. */
  call?: (args: readonly PyValue[]) => PyValue;
}

/** Options of {@linkcode unpickle}. */
export interface UnpickleOptions {
  /** The only globals the pickle may reference. */
  globals: readonly AllowedGlobal[];
  /** Resolves BINPERSID references (torch: storages); absent means they are refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Throws the caller's error with a message detail; the interpreter never returns then. */
  fail: (detail: string) => never;
  /**
   * Most values and memo entries the pickle may create (default 1,000,000). Each costs
   * about 90 bytes of heap, so this bounds memory whatever the pickle's length.
   */
  maxValues?: number;
}

// Opcode names, for messages about refused opcodes.
const OPCODE_NAMES: Record<string, string> = {
  I: "INT",
  J: "BININT",
  K: "BININT1",
  M: "BININT2",
  L: "LONG",
  "\x8a": "LONG1",
  "\x8b": "LONG4",
  S: "STRING",
  T: "BINSTRING",
  U: "SHORT_BINSTRING",
  B: "BINBYTES",
  C: "SHORT_BINBYTES",
  "\x8e": "BINBYTES8",
  "\x96": "BYTEARRAY8",
  "\x97": "NEXT_BUFFER",
  "\x98": "READONLY_BUFFER",
  N: "NONE",
  "\x88": "NEWTRUE",
  "\x89": "NEWFALSE",
  V: "UNICODE",
  "\x8c": "SHORT_BINUNICODE",
  X: "BINUNICODE",
  "\x8d": "BINUNICODE8",
  F: "FLOAT",
  G: "BINFLOAT",
  "]": "EMPTY_LIST",
  a: "APPEND",
  e: "APPENDS",
  l: "LIST",
  ")": "EMPTY_TUPLE",
  t: "TUPLE",
  "\x85": "TUPLE1",
  "\x86": "TUPLE2",
  "\x87": "TUPLE3",
  "}": "EMPTY_DICT",
  d: "DICT",
  s: "SETITEM",
  u: "SETITEMS",
  "\x8f": "EMPTY_SET",
  "\x90": "ADDITEMS",
  "\x91": "FROZENSET",
  "0": "POP",
  "2": "DUP",
  "(": "MARK",
  "1": "POP_MARK",
  g: "GET",
  h: "BINGET",
  j: "LONG_BINGET",
  p: "PUT",
  q: "BINPUT",
  r: "LONG_BINPUT",
  "\x94": "MEMOIZE",
  "\x82": "EXT1",
  "\x83": "EXT2",
  "\x84": "EXT4",
  c: "GLOBAL",
  "\x93": "STACK_GLOBAL",
  R: "REDUCE",
  b: "BUILD",
  i: "INST",
  o: "OBJ",
  "\x81": "NEWOBJ",
  "\x92": "NEWOBJ_EX",
  "\x80": "PROTO",
  ".": "STOP",
  "\x95": "FRAME",
  P: "PERSID",
  Q: "BINPERSID",
};

/**
 * Names a value's Python type for messages.
 * @param value any interpreter value
 * @returns e.g. `"int"`, `"tuple"`, `"global os.system"`
 */
export function pythonTypeOf(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (typeof value === "bigint") return "int";
  if (typeof value === "string") return "str";
  if (value instanceof PyTuple) return "tuple";
  if (value instanceof PyList) return "list";
  if (value instanceof PyDict) return "dict";
  if (value instanceof PyGlobal) return `global ${value.module}.${value.name}`;
  return value.pythonType;
}

/**
 * Names a value's Python type with an article, for messages.
 * @param value any interpreter value
 * @returns e.g. `"an int"`, `"a tuple"`, `"a global os.system"`
 */
export function describePython(value: PyValue): string {
  const type = pythonTypeOf(value);
  return `${/^[aeiouAEIOU]/.test(type) ? "an" : "a"} ${type}`;
}

/** True for values Python can hash and this interpreter can key a Map by. */
function isKey(value: PyValue): value is PyKey {
  return value === null || typeof value !== "object";
}

/**
 * Runs a pickle under the allow-list and returns the value STOP leaves.
 * @param bytes the pickle
 * @param options allowed globals, persistent-id loader and the failure callback
 * @returns the unpickled value
 * @throws whatever `options.fail` throws, for refused opcodes and globals, truncation,
 *   stack underflow, wrong operand types; and whatever allowed callables throw
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PyValue {
  const { fail } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  // A Map, not an array: a hostile LONG_BINPUT index must not allocate 2^32 slots.
  const memo = new Map<number, PyValue>();
  let pos = 0;
  let opAt = 0;
  let opName = "";
  const maxValues = options.maxValues ?? 1_000_000;
  let created = 0;
  const count = () => {
    if (++created > maxValues) fail(`pickle creates more than ${maxValues} values`);
  };
  // Every value goes through here; it also reads `stack` only after the argument is built
  // (`push(popMark())` would bind the array that popMark replaces).
  const push = (value: PyValue) => {
    count();
    stack.push(value);
  };
  const memoSet = (index: number, value: PyValue) => {
    count();
    memo.set(index, value);
  };

  const where = () => `${opName} at byte ${opAt}`;
  const need = (n: number): number => {
    if (n > bytes.length - pos) fail(`pickle is truncated: ${where()} needs ${n} more bytes`);
    const start = pos;
    pos += n;
    return start;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail(`pickle stack is empty at ${where()}`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail(`pickle stack is empty at ${where()}`);
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    if (marks.length === 0) fail(`pickle has no MARK before ${where()}`);
    const items = stack;
    stack = marks.pop() as PyValue[];
    return items;
  };
  const text = (n: number): string => {
    const start = need(n);
    try {
      return decoder.decode(bytes.subarray(start, start + n));
    } catch {
      return fail(`pickle has a string that is not valid UTF-8 at ${where()}`);
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail(`pickle is truncated: ${where()} has no end of line`);
    const value = text(end - pos);
    pos++;
    return value;
  };
  const u64 = (): number => {
    const start = need(8);
    const high = view.getUint32(start + 4, true);
    if (high > 0x1fffff) fail(`pickle has a length too large at ${where()}`);
    return high * 2 ** 32 + view.getUint32(start, true);
  };
  const resolve = (module: string, name: string): PyGlobal => {
    const allowed = options.globals.find((g) => g.module === module && g.name === name);
    if (!allowed) {
      const names = options.globals.map((g) => `${g.module}.${g.name}`);
      const list = names.length > 4
        ? `${names.slice(0, 4).join(", ")} and ${names.length - 4} more`
        : names.join(", ");
      fail(
        `pickle references global ${quote(`${module}.${name}`)} (${where()}), which is ` +
          `not allowed: allowed globals are ${list}`,
      );
    }
    return new PyGlobal(module, name, allowed?.call);
  };
  const dictOnTop = (): PyDict => {
    const dict = top();
    if (!(dict instanceof PyDict)) fail(`${where()} targets ${describePython(dict)}, not a dict`);
    return dict as PyDict;
  };
  const setItem = (dict: PyDict, key: PyValue, value: PyValue) => {
    if (!isKey(key)) fail(`${where()} uses ${describePython(key)} as a dict key`);
    dict.map.set(key as PyKey, value);
  };
  const listOnTop = (): PyList => {
    const list = top();
    if (!(list instanceof PyList)) fail(`${where()} targets ${describePython(list)}, not a list`);
    return list as PyList;
  };
  const memoGet = (index: number): PyValue => {
    if (!memo.has(index)) fail(`pickle memo has no entry ${index} at ${where()}`);
    return memo.get(index) as PyValue;
  };

  while (pos < bytes.length) {
    opAt = pos;
    const op = String.fromCharCode(bytes[pos++]);
    opName = OPCODE_NAMES[op] ?? `opcode 0x${op.charCodeAt(0).toString(16).padStart(2, "0")}`;
    switch (op) {
      case "\x80": { // PROTO
        const protocol = bytes[need(1)];
        if (protocol > 5) fail(`pickle protocol ${protocol} is not supported`);
        break;
      }
      case "\x95": // FRAME: a length hint only
        if (u64() > bytes.length - pos) fail(`pickle frame runs past the end at ${where()}`);
        break;
      case ".":
        return pop();
      case "(":
        marks.push(stack);
        stack = [];
        break;
      case "}":
        push(new PyDict());
        break;
      case "]":
        push(new PyList());
        break;
      case ")":
        push(new PyTuple([]));
        break;
      case "t":
        push(new PyTuple(popMark()));
        break;
      case "\x85":
        push(new PyTuple([pop()]));
        break;
      case "\x86": {
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case "\x87": {
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case "X":
        push(text(view.getUint32(need(4), true)));
        break;
      case "\x8c":
        push(text(bytes[need(1)]));
        break;
      case "\x8d":
        push(text(u64()));
        break;
      case "q":
        memoSet(bytes[need(1)], top());
        break;
      case "r":
        memoSet(view.getUint32(need(4), true), top());
        break;
      case "\x94":
        memoSet(memo.size, top());
        break;
      case "h":
        push(memoGet(bytes[need(1)]));
        break;
      case "j":
        push(memoGet(view.getUint32(need(4), true)));
        break;
      case "c": {
        const module = line();
        push(resolve(module, line()));
        break;
      }
      case "\x93": {
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail(
            `${where()} needs two strings, got ${pythonTypeOf(module)} and ${pythonTypeOf(name)}`,
          );
        }
        push(resolve(module as string, name as string));
        break;
      }
      case "J":
        push(view.getInt32(need(4), true));
        break;
      case "K":
        push(bytes[need(1)]);
        break;
      case "M":
        push(view.getUint16(need(2), true));
        break;
      case "\x8a": {
        const n = bytes[need(1)];
        // torch writes small ints only; 8 bytes already covers every int64.
        if (n > 8) fail(`pickle has an integer of ${n} bytes at ${where()}: the limit is 8`);
        const start = need(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]);
        if (n > 0 && bytes[start + n - 1] & 0x80) value -= 1n << BigInt(8 * n);
        const small = Number(value);
        push(Number.isSafeInteger(small) ? small : value);
        break;
      }
      case "G":
        push(view.getFloat64(need(8), false));
        break;
      case "\x88":
        push(true);
        break;
      case "\x89":
        push(false);
        break;
      case "N":
        push(null);
        break;
      case "Q": {
        const pid = pop();
        if (!options.persistentLoad) fail(`pickle has a persistent id at ${where()}`);
        push(options.persistentLoad!(pid));
        break;
      }
      case "R": {
        const args = pop();
        const callable = pop();
        if (!(callable instanceof PyGlobal) || !callable.call) {
          fail(`${where()} cannot call ${describePython(callable)}`);
        }
        if (!(args instanceof PyTuple)) fail(`${where()} needs a tuple of arguments`);
        push((callable as PyGlobal).call!((args as PyTuple).items));
        break;
      }
      case "s": {
        const value = pop();
        const key = pop();
        setItem(dictOnTop(), key, value);
        break;
      }
      case "u": {
        const items = popMark();
        const dict = dictOnTop();
        if (items.length % 2) fail(`${where()} has an odd number of items`);
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i], items[i + 1]);
        break;
      }
      case "a": {
        const value = pop();
        listOnTop().items.push(value);
        break;
      }
      case "e": {
        const items = popMark();
        const list = listOnTop().items;
        // A loop, not push(...items): spreading a huge MARK group overflows the call stack.
        for (const item of items) list.push(item);
        break;
      }
      case "b": {
        // torch sets OrderedDict._metadata (per-module versions) this way; a dict state on a
        // dict is the only BUILD allowed, and it is dropped: it is not tensor data.
        const state = pop();
        const target = top();
        if (!(target instanceof PyDict) || !(state instanceof PyDict)) {
          fail(`${where()} on ${describePython(target)} is not allowed`);
        }
        break;
      }
      case "0":
        pop();
        break;
      case "1":
        popMark();
        break;
      case "2":
        push(top());
        break;
      default:
        fail(`pickle uses ${opName} at byte ${opAt}, which is not allowed`);
    }
  }
  return fail("pickle ends without a STOP opcode");
}
