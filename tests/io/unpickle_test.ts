import assert from "node:assert/strict";
import {
  type AllowedGlobal,
  PyDict,
  PyGlobal,
  PyList,
  PyTuple,
  type PyValue,
  unpickle,
} from "../../src/io/unpickle.ts";
import { WeightsFormatError } from "../../src/io/weights_format_error.ts";
import { assertFormatError, bytesOf, pk } from "./_helpers.ts";

const fail = (detail: string): never => {
  throw new WeightsFormatError(`Cannot unpickle: ${detail}`, { file: "test" });
};

/** Runs a pickle with a spy allow-list: `calls` records every stand-in call. */
function run(bytes: Uint8Array, calls: string[] = []) {
  const globals: AllowedGlobal[] = [
    {
      module: "collections",
      name: "OrderedDict",
      call: () => {
        calls.push("OrderedDict");
        return new PyDict();
      },
    },
    { module: "torch", name: "FloatStorage" },
  ];
  const value = unpickle(bytes, { globals, fail, persistentLoad: () => new PyList() });
  return { value, calls };
}

Deno.test("unpickle() decodes the value opcodes torch.save uses", () => {
  const long1 = (...b: number[]) => bytesOf([0x8a, b.length, ...b]);
  const float = new DataView(new ArrayBuffer(8));
  float.setFloat64(0, -1.25); // BINFLOAT is big-endian
  const { value } = run(bytesOf(
    pk.proto(),
    "(",
    pk.int(7),
    pk.int(-5),
    bytesOf([0x4d, 0x34, 0x12]), // BININT2
    long1(),
    long1(0xff),
    long1(0x00, 0x80),
    long1(1, 0, 0, 0, 0, 0, 0, 0x40), // 2^62 + 1: beyond 2^53, stays exact as bigint
    "G",
    new Uint8Array(float.buffer),
    pk.str("héllo"),
    bytesOf([0x8c, 2], "ok"), // SHORT_BINUNICODE
    bytesOf([0x88, 0x89]),
    "N",
    ")",
    "]",
    "(",
    pk.int(1),
    pk.int(2),
    "e", // APPENDS
    pk.int(9),
    "a", // APPEND
    "t.",
  ));
  assert.ok(value instanceof PyTuple);
  const [a, b, c, d, e, f, g, h, i, j, k, l, m, n, list] = value.items;
  assert.deepEqual([a, b, c, d, e, f, g, h, i, j, k, l, m], [
    7,
    -5,
    0x1234,
    0,
    -1,
    -32768,
    2n ** 62n + 1n,
    -1.25,
    "héllo",
    "ok",
    true,
    false,
    null,
  ]);
  assert.deepEqual((n as PyTuple).items, []);
  assert.deepEqual((list as PyList).items, [1, 2, 9]);
});

Deno.test("unpickle() builds dicts with SETITEM, SETITEMS, memo, DUP and POP", () => {
  const { value, calls } = run(bytesOf(
    pk.proto(),
    pk.global("collections", "OrderedDict"),
    "q\x00)R", // BINPUT 0, call OrderedDict()
    "(",
    pk.str("a"),
    pk.int(1),
    pk.str("b"),
    "h\x00)R", // BINGET 0: OrderedDict again
    "u",
    pk.str("c"),
    pk.int(3),
    "s",
    "}", // BUILD state: a dict, dropped (torch's _metadata)
    "b",
    "2", // DUP then POP
    "0",
    ".",
  ));
  assert.ok(value instanceof PyDict);
  assert.deepEqual([...value.map.keys()], ["a", "b", "c"]);
  assert.ok(value.map.get("b") instanceof PyDict);
  assert.deepEqual(calls, ["OrderedDict", "OrderedDict"]);
});

Deno.test("unpickle() runs protocol 4 framing, MEMOIZE and STACK_GLOBAL", () => {
  const frame = bytesOf([0x95, 20, 0, 0, 0, 0, 0, 0, 0]);
  const short = (s: string) => bytesOf([0x8c, s.length], s);
  const { value } = run(bytesOf(
    pk.proto(4),
    frame,
    short("collections"),
    "\x94",
    short("OrderedDict"),
    "\x94\x93\x94)R\x94",
    "h\x03", // memo 3 is the dict
    "0.",
  ));
  assert.ok(value instanceof PyDict);
});

Deno.test("unpickle() refuses globals outside the allow-list before calling anything", () => {
  for (
    const [module, name] of [
      ["os", "system"],
      ["posix", "system"],
      ["builtins", "eval"],
      ["__builtin__", "eval"],
      ["builtins", "getattr"],
      ["subprocess", "Popen"],
      ["collections", "OrderedDict.fromkeys"],
      ["torch", "load"],
    ]
  ) {
    const pickle = bytesOf(
      pk.proto(),
      pk.global("collections", "OrderedDict"),
      "(",
      pk.global(module, name),
      pk.str("echo pwned"),
      "\x85R",
      "t",
      "R.",
    );
    const calls: string[] = [];
    assertFormatError(
      () => run(pickle, calls),
      `pickle references global "${module}.${name}" (GLOBAL at byte 28), which is not allowed`,
      "allowed globals are collections.OrderedDict, torch.FloatStorage",
    );
    // OrderedDict's REDUCE comes after the refused global, so nothing ran at all.
    assert.deepEqual(calls, []);
  }
  assertFormatError(
    () => run(bytesOf(pk.proto(4), bytesOf([0x8c, 8], "builtins", [0x8c, 4], "exec"), "\x93.")),
    'global "builtins.exec" (STACK_GLOBAL at byte 18)',
  );
});

Deno.test("unpickle() refuses opcodes outside the allowed set, naming them", () => {
  const cases: [string, Uint8Array][] = [
    ["INST", bytesOf("(ios\nsystem\n.")],
    ["OBJ", bytesOf("(o.")],
    ["NEWOBJ", bytesOf(")\x81.")],
    ["NEWOBJ_EX", bytesOf("\x92.")],
    ["EXT1", bytesOf("\x82\x01.")],
    ["PERSID", bytesOf("P1\n.")],
    ["STRING", bytesOf("S'a'\n.")],
    ["BINBYTES", bytesOf("B\x01\x00\x00\x00a.")],
    ["opcode 0xff", bytesOf("\xff.")],
  ];
  for (const [name, pickle] of cases) {
    assertFormatError(() => run(pickle), `pickle uses ${name} at byte`, "which is not allowed");
  }
});

Deno.test("unpickle() rejects malformed pickles with a clear message", () => {
  const cases: [string, Uint8Array][] = [
    [
      "pickle is truncated: BINUNICODE at byte 2 needs 16 more bytes",
      bytesOf(pk.proto(), "X\x10\x00\x00\x00abc"),
    ],
    ["pickle ends without a STOP opcode", bytesOf(pk.proto(), pk.int(1))],
    ["pickle stack is empty at STOP", bytesOf(".")],
    ["pickle has no MARK before TUPLE", bytesOf("t.")],
    ["memo has no entry 5", bytesOf("h\x05.")],
    ["integer of 9 bytes", bytesOf([0x8a, 9], new Uint8Array(9), ".")],
    ["not valid UTF-8", bytesOf([0x8c, 1, 0xff], ".")],
    ["pickle protocol 9 is not supported", bytesOf([0x80, 9], ".")],
    ["frame runs past the end", bytesOf([0x95, 99, 0, 0, 0, 0, 0, 0, 0], ".")],
    ["cannot call a global torch.FloatStorage", bytesOf(pk.global("torch", "FloatStorage"), ")R.")],
    ["cannot call an int", bytesOf(pk.int(1), ")R.")],
    [
      "REDUCE at byte 27 needs a tuple of arguments",
      bytesOf(pk.global("collections", "OrderedDict"), pk.int(1), "R."),
    ],
    ["BUILD at byte 2 on a list is not allowed", bytesOf("]}b.")],
    ["SETITEM at byte 5 targets a list, not a dict", bytesOf("]", pk.int(1), pk.int(2), "s.")],
    ["uses a list as a dict key", bytesOf("}]", pk.int(2), "s.")],
    ["SETITEMS at byte 4 has an odd number of items", bytesOf("}(", pk.int(1), "u.")],
    ["APPEND at byte 3 targets a dict, not a list", bytesOf("}", pk.int(1), "a.")],
    ["STACK_GLOBAL at byte 4 needs two strings", bytesOf(pk.int(1), pk.int(2), "\x93.")],
    ["has no end of line", bytesOf("cos")],
  ];
  for (const [message, pickle] of cases) assertFormatError(() => run(pickle), message);
});

Deno.test("unpickle() stays linear on hostile sizes", () => {
  // A huge memo index must not allocate; 10^6 APPENDS items must not overflow the stack.
  const memo = run(bytesOf(pk.int(1), "r\xff\xff\xff\xff", "j\xff\xff\xff\xff", "."));
  assert.equal(memo.value, 1);
  const many = bytesOf("](", new Uint8Array(2_000_000).map((_, i) => (i % 2 ? 0 : 0x4b)), "e.");
  const list = unpickle(many, { globals: [], fail, maxValues: 1_000_001 });
  assert.equal((list as PyList).items.length, 1_000_000);
  // One value more than allowed: the budget counts every value and memo entry.
  assertFormatError(() => run(many), "pickle creates more than 1000000 values");
  assertFormatError(
    () => unpickle(bytesOf(pk.int(1), "q\x00q\x01q\x02."), { globals: [], fail, maxValues: 3 }),
    "pickle creates more than 3 values",
  );
  // Nesting 10^5 tuples deep uses the explicit stack, not recursion.
  const deep = bytesOf(new Uint8Array(100_000).fill(0x28), new Uint8Array(100_000).fill(0x74), ".");
  let v: PyValue = run(deep).value;
  let depth = 0;
  while (v instanceof PyTuple && v.items.length) {
    v = v.items[0];
    depth++;
  }
  assert.equal(depth, 99_999);
});

Deno.test("unpickle() passes persistent ids to the loader and refuses them without one", () => {
  const pickle = bytesOf(pk.str("key"), "Q.");
  const seen: PyValue[] = [];
  const value = unpickle(pickle, {
    globals: [],
    fail,
    persistentLoad: (pid) => {
      seen.push(pid);
      return 5;
    },
  });
  assert.equal(value, 5);
  assert.deepEqual(seen, ["key"]);
  assertFormatError(() => unpickle(pickle, { globals: [], fail }), "persistent id");
  assert.ok(new PyGlobal("a", "b") instanceof PyGlobal);
});
