/**
 * ONNX model files: the plain-object model fbp builds ({@linkcode OnnxModel}) written to and
 * read from protobuf bytes with protobufjs over the messages of ONNX's `onnx.proto` that a
 * float32 inference graph needs (the schema below: field numbers as published by the ONNX
 * project, proto2 like the original, other fields and messages left out).
 * @module
 */
import protobuf from "protobufjs";
import { littleEndianBytes } from "../io/safetensors.ts";
import { decodeToFloat32 } from "../io/weights_tensor.ts";

/**
 * The part of ONNX's `onnx.proto` (IR version 8) that fbp writes: ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
 * OperatorSetIdProto and StringStringEntryProto, with their published field numbers.
 */
const ONNX_SCHEMA = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType FLOAT: the only element type fbp's graphs use. */
const FLOAT = 1;

/** AttributeProto.AttributeType values of the attribute kinds below. */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 } as const;

/** A node attribute, with its ONNX kind. */
export type OnnxAttribute =
  | { type: "int"; value: number }
  | { type: "ints"; value: readonly number[] }
  | { type: "float"; value: number }
  | { type: "floats"; value: readonly number[] }
  | { type: "string"; value: string };

/** One operator call: `op` of the default ONNX domain on named values. */
export interface OnnxNode {
  /** Operator type, e.g. "Conv". */
  op: string;
  /** Names of the input values (graph inputs, initializers or other nodes' outputs). */
  inputs: readonly string[];
  /** Names of the values it produces (unique in the graph). */
  outputs: readonly string[];
  /** Optional node name (shown by viewers). */
  name?: string;
  /** Attributes by name. */
  attributes?: Readonly<Record<string, OnnxAttribute>>;
}

/** A constant float32 tensor stored in the file (weights, statistics, scalars). */
export interface OnnxInitializer {
  /** Value name. */
  name: string;
  /** Shape; [] for a scalar. */
  dims: readonly number[];
  /** Row-major values (product of dims). */
  data: Float32Array;
}

/** A float32 graph input or output: its name and shape (a string = a symbolic dimension). */
export interface OnnxValueInfo {
  /** Value name. */
  name: string;
  /** Dimensions: numbers, or names such as "N" for a dimension given at run time. */
  shape: readonly (number | string)[];
  /** Optional description. */
  doc?: string;
}

/** A computation graph: nodes in topological order. */
export interface OnnxGraph {
  /** Graph name. */
  name: string;
  /** The nodes, each after the nodes whose outputs it reads. */
  nodes: readonly OnnxNode[];
  /** Constant tensors. */
  initializers: readonly OnnxInitializer[];
  /** Inputs fed at run time. */
  inputs: readonly OnnxValueInfo[];
  /** Outputs. */
  outputs: readonly OnnxValueInfo[];
  /** Optional description. */
  doc?: string;
}

/** A whole model file. */
export interface OnnxModel {
  /** ONNX IR version (8 goes with opset 17). */
  irVersion: number;
  /** Version of the default ("ai.onnx") operator set. */
  opset: number;
  /** The tool that wrote it. */
  producer: string;
  /** The tool's version. */
  producerVersion: string;
  /** String metadata (`metadata_props`), e.g. the preprocessing a user must apply. */
  metadata: Readonly<Record<string, string>>;
  /** The graph. */
  graph: OnnxGraph;
  /** Optional description. */
  doc?: string;
}

let modelType: protobuf.Type | undefined;

/** ModelProto of the schema, parsed once. */
function modelProto(): protobuf.Type {
  return modelType ??= protobuf.parse(ONNX_SCHEMA, { keepCase: true }).root.lookupType(
    "onnx.ModelProto",
  );
}

function valueInfo(v: OnnxValueInfo) {
  return {
    name: v.name,
    ...(v.doc ? { doc_string: v.doc } : {}),
    type: {
      tensor_type: {
        elem_type: FLOAT,
        shape: {
          dim: v.shape.map((d) => typeof d === "number" ? { dim_value: d } : { dim_param: d }),
        },
      },
    },
  };
}

function attribute(name: string, a: OnnxAttribute) {
  const type = ATTRIBUTE_TYPE[a.type];
  switch (a.type) {
    case "int":
      return { name, type, i: a.value };
    case "ints":
      return { name, type, ints: [...a.value] };
    case "float":
      return { name, type, f: a.value };
    case "floats":
      return { name, type, floats: [...a.value] };
    case "string":
      return { name, type, s: new TextEncoder().encode(a.value) };
  }
}

/**
 * Checks what the schema cannot: an initializer's data length against its shape, and
 * each value name defined once before it is read.
 */
function checkGraph(g: OnnxGraph): void {
  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (defined.has(name)) {
      throw new Error(`Cannot encode ONNX graph "${g.name}": value "${name}" is defined twice`);
    }
    if (name === "") throw new Error(`Cannot encode ONNX graph "${g.name}": ${what} has no name`);
    defined.add(name);
  };
  for (const v of g.inputs) define(v.name, "an input");
  for (const t of g.initializers) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) {
      throw new Error(
        `Cannot encode ONNX initializer "${t.name}": it holds ${t.data.length} values, ` +
          `its shape [${t.dims.join(", ")}] needs ${n}`,
      );
    }
    define(t.name, "an initializer");
  }
  for (const node of g.nodes) {
    for (const i of node.inputs) {
      if (i !== "" && !defined.has(i)) {
        throw new Error(
          `Cannot encode ONNX graph "${g.name}": node ${node.op} "${node.name ?? "?"}" ` +
            `reads "${i}" before anything defines it`,
        );
      }
    }
    for (const o of node.outputs) define(o, `an output of ${node.op}`);
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name)) {
      throw new Error(`Cannot encode ONNX graph "${g.name}": output "${o.name}" is never computed`);
    }
  }
}

/**
 * Encodes a model as the bytes of an `.onnx` file (a ModelProto).
 * @throws {Error} when an initializer's data disagrees with its shape, or a node reads a
 *   value that nothing defines before it
 * @example Encode a one-node model and read it back
 * ```ts
 * import { decodeOnnxModel, encodeOnnxModel } from "./onnx_proto.ts";
 * const bytes = encodeOnnxModel({
 *   irVersion: 8, opset: 17, producer: "example", producerVersion: "1", metadata: {},
 *   graph: {
 *     name: "g", initializers: [],
 *     nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }],
 *     inputs: [{ name: "x", shape: ["N", 2] }], outputs: [{ name: "y", shape: ["N", 2] }],
 *   },
 * });
 * if (decodeOnnxModel(bytes).graph.nodes[0].op !== "Relu") throw new Error("round trip");
 * ```
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  checkGraph(model.graph);
  const g = model.graph;
  const type = modelProto();
  const message = type.fromObject({
    ir_version: model.irVersion,
    opset_import: [{ domain: "", version: model.opset }],
    producer_name: model.producer,
    producer_version: model.producerVersion,
    ...(model.doc ? { doc_string: model.doc } : {}),
    metadata_props: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      ...(g.doc ? { doc_string: g.doc } : {}),
      node: g.nodes.map((n) => ({
        input: [...n.inputs],
        output: [...n.outputs],
        ...(n.name ? { name: n.name } : {}),
        op_type: n.op,
        attribute: Object.entries(n.attributes ?? {}).map(([k, a]) => attribute(k, a)),
      })),
      initializer: g.initializers.map((t) => ({
        name: t.name,
        dims: [...t.dims],
        data_type: FLOAT,
        // TensorProto.raw_data is little-endian, as safetensors' data.
        raw_data: littleEndianBytes(t.data),
      })),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  });
  return type.encode(message).finish();
}

type Decoded = Record<string, unknown>;

function decodeValueInfo(v: Decoded): OnnxValueInfo {
  const t = ((v.type as Decoded)?.tensor_type ?? {}) as Decoded;
  const dims = (((t.shape as Decoded)?.dim ?? []) as Decoded[]).map((d) =>
    d.dim_param !== undefined ? String(d.dim_param) : Number(d.dim_value)
  );
  return {
    name: String(v.name),
    shape: dims,
    ...(v.doc_string ? { doc: String(v.doc_string) } : {}),
  };
}

function decodeAttribute(a: Decoded): OnnxAttribute {
  switch (Number(a.type)) {
    case ATTRIBUTE_TYPE.int:
      return { type: "int", value: Number(a.i) };
    case ATTRIBUTE_TYPE.ints:
      return { type: "ints", value: ((a.ints ?? []) as unknown[]).map(Number) };
    case ATTRIBUTE_TYPE.float:
      return { type: "float", value: Number(a.f) };
    case ATTRIBUTE_TYPE.floats:
      return { type: "floats", value: ((a.floats ?? []) as unknown[]).map(Number) };
    case ATTRIBUTE_TYPE.string:
      return { type: "string", value: new TextDecoder().decode(a.s as Uint8Array) };
    default:
      throw new Error(
        `Cannot decode ONNX attribute "${a.name}": type ${a.type} is not one fbp reads ` +
          "(int, ints, float, floats, string)",
      );
  }
}

/**
 * A float32 initializer's values from `raw_data` (little-endian) or `float_data`, checked
 * against its dims.
 */
function decodeInitializer(t: Decoded): OnnxInitializer {
  const name = String(t.name ?? "");
  if (t.data_type !== FLOAT) {
    throw new Error(
      `Cannot decode ONNX initializer "${name}": data type ${t.data_type}, expected 1 (float)`,
    );
  }
  const dims = ((t.dims ?? []) as unknown[]).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const mismatch = (held: string, needed: string) =>
    new Error(
      `Cannot decode ONNX initializer "${name}": it holds ${held}, its shape ` +
        `[${dims.join(", ")}] needs ${needed}`,
    );
  const raw = t.raw_data as Uint8Array | undefined;
  if (raw && raw.length > 0) {
    if (raw.length !== 4 * count) throw mismatch(`${raw.length} bytes`, `${4 * count}`);
    return { name, dims, data: decodeToFloat32(raw, "F32", count) };
  }
  const floats = (t.float_data ?? []) as number[];
  if (floats.length !== count) throw mismatch(`${floats.length} values`, `${count}`);
  return { name, dims, data: Float32Array.from(floats) };
}

/**
 * Reads the bytes of an `.onnx` file written by {@linkcode encodeOnnxModel} (float32
 * initializers in `raw_data` or `float_data`, attributes of the kinds fbp writes).
 * @throws {Error} when the bytes are not a ModelProto, hold a tensor or attribute of another
 *   kind, or an initializer whose data length disagrees with its dims (naming it)
 */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  const type = modelProto();
  let raw: Decoded;
  try {
    raw = type.toObject(type.decode(bytes), { longs: Number, bytes: Uint8Array }) as Decoded;
  } catch (e) {
    throw new Error(`Cannot decode ONNX model: ${(e as Error).message}`);
  }
  const g = (raw.graph ?? {}) as Decoded;
  const opset = ((raw.opset_import ?? []) as Decoded[]).find((o) => !o.domain);
  return {
    irVersion: Number(raw.ir_version ?? 0),
    opset: Number(opset?.version ?? 0),
    producer: String(raw.producer_name ?? ""),
    producerVersion: String(raw.producer_version ?? ""),
    ...(raw.doc_string ? { doc: String(raw.doc_string) } : {}),
    metadata: Object.fromEntries(
      ((raw.metadata_props ?? []) as Decoded[]).map((e) => [String(e.key), String(e.value)]),
    ),
    graph: {
      name: String(g.name ?? ""),
      ...(g.doc_string ? { doc: String(g.doc_string) } : {}),
      nodes: ((g.node ?? []) as Decoded[]).map((n) => ({
        op: String(n.op_type),
        inputs: (n.input ?? []) as string[],
        outputs: (n.output ?? []) as string[],
        ...(n.name ? { name: String(n.name) } : {}),
        attributes: Object.fromEntries(
          ((n.attribute ?? []) as Decoded[]).map((a) => [String(a.name), decodeAttribute(a)]),
        ),
      })),
      initializers: ((g.initializer ?? []) as Decoded[]).map(decodeInitializer),
      inputs: ((g.input ?? []) as Decoded[]).map(decodeValueInfo),
      outputs: ((g.output ?? []) as Decoded[]).map(decodeValueInfo),
    },
  };
}
