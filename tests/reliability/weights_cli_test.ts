/**
 * Hostile or broken weights files given to the command-line tools (issue 8): `predict
 * --checkpoint` and `train --pretrained` check the file before any other work (no backend
 * for predict's format check, no image, no data, no run folder) and exit 1 with one line
 * that names the file and the reason. Also: the early backbone shape table agrees with the
 * network it stands for.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import {
  readPretrainedWeights,
  resnet18BackboneShapes,
  saveCheckpoint,
  stateToHost,
} from "../../src/models/checkpoint.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-weights-cli-" });
const tool = (name: string) => new URL(`../../tasks/${name}.ts`, import.meta.url).pathname;
const fixture = (name: string) => new URL(`../testdata/${name}`, import.meta.url).pathname;
const NARROW_PTH = fixture("resnet18_narrow.pth"); // torchvision layout, widths 4,4,8,8
const MALICIOUS_PTH = fixture("io/malicious.pth"); // pickle calls os.system

async function run(
  name: string,
  args: string[],
): Promise<{ code: number; stderr: string; seconds: number }> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", tool(name), ...args],
    stdout: "piped",
    stderr: "piped",
    cwd: root, // a marker file the malicious pickle would write lands here
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

const config = parseNetworkConfig({
  arch: "resnet18",
  tasks: [{ name: "beauty", classes: 5, database: "faces" }],
  widths: [4, 4, 8, 8],
  imageSize: 32,
}, "test config");
const backend = new ReferenceBackend();
const net = new MultiTaskNet(config, { backend });
const good = join(root, "good.safetensors");
await saveCheckpoint(good, net);
const goodBytes = await Deno.readFile(good);

Deno.test("resnet18BackboneShapes() matches the network's backbone tensors", () => {
  for (const widths of [[4, 4, 8, 8], [64, 128, 256, 512], [8, 16, 16, 32]] as const) {
    const n = new MultiTaskNet(parseNetworkConfig({ ...config, widths }, "c"), { backend });
    const state = n.stateDict();
    const expected = resnet18BackboneShapes(widths);
    for (const [key, shape] of expected) {
      // Network keys carry the database between the BN name and the tensor name.
      const netKey = key.replace(
        /^(.*(?:bn\d|downsample\.1))\.(weight|bias|running_mean|running_var)$/,
        "$1.faces.$2",
      );
      assert.deepEqual(state.get(netKey)?.shape, shape, key);
    }
    const backboneKeys = [...state.keys()].filter((k) =>
      /^(conv1|bn1|layer\d\.\d\.(conv\d|bn\d|downsample))\./.test(k)
    );
    assert.equal(backboneKeys.length, expected.size);
    n.dispose();
  }
});

Deno.test("readPretrainedWeights() accepts the narrow fixture and refuses other widths", async () => {
  assert.ok((await readPretrainedWeights(NARROW_PTH, [4, 4, 8, 8])).has("conv1.weight"));
  await assert.rejects(
    readPretrainedWeights(NARROW_PTH, [64, 128, 256, 512]),
    /tensor "conv1\.weight" has shape \[4, 3, 7, 7\], expected \[64, 3, 7, 7\]/,
  );
  await assert.rejects(readPretrainedWeights(root, [4, 4, 8, 8]), /it is a directory/);
});

Deno.test("predict --checkpoint refuses bad files before reading any image", async () => {
  const truncated = join(root, "truncated.safetensors");
  await Deno.writeFile(truncated, goodBytes.subarray(0, Math.floor(goodBytes.length * 0.6)));
  const headerOnly = join(root, "header_cut.safetensors");
  await Deno.writeFile(headerOnly, goodBytes.subarray(0, 20));
  const wrongShape = join(root, "wrong_shape.safetensors");
  const tensors = stateToHost(net);
  tensors.set("heads.beauty.weight", { shape: [4, 8], data: new Float32Array(32) });
  await writeSafetensors(wrongShape, tensors, {
    metadata: { fbp: JSON.stringify(net.config) },
  });
  const notSafetensors = join(root, "notes.safetensors");
  await Deno.writeTextFile(notSafetensors, "these are not weights\n");
  // The image does not exist: an error about it would mean the checkpoint was not checked first.
  const image = join(root, "no-such-image.jpg");
  const cases: [string, RegExp][] = [
    [truncated, /Cannot read safetensors file ".*truncated\.safetensors": .*(past the end|bytes)/],
    [headerOnly, /Cannot read safetensors file ".*header_cut\.safetensors"/],
    [MALICIOUS_PTH, /Cannot load checkpoint ".*malicious\.pth": it is a PyTorch zip \(\.pth\)/],
    [
      wrongShape,
      /Cannot load ".*wrong_shape\.safetensors": tensor "heads\.beauty\.weight" has shape \[4, 8\], the config expects \[5, 8\]/,
    ],
    [notSafetensors, /Cannot read safetensors file ".*notes\.safetensors"/],
    [
      join(root, "missing.safetensors"),
      /Cannot read checkpoint ".*missing\.safetensors": file not found/,
    ],
    [root, /Cannot read checkpoint ".*": it is a directory/],
  ];
  for (const [file, message] of cases) {
    const r = await run("predict", ["--checkpoint", file, image]);
    assert.equal(r.code, 1, `${file}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /no-such-image/, "the image was read before the checkpoint");
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
  await assert.rejects(Deno.stat(join(root, "pwned.txt")), Deno.errors.NotFound);
});

Deno.test("train --pretrained refuses bad files before reading data or creating the run", async () => {
  const truncated = join(root, "truncated.pth");
  const pth = await Deno.readFile(NARROW_PTH);
  await Deno.writeFile(truncated, pth.subarray(0, Math.floor(pth.length / 2)));
  // Data that cannot be read: an error about it would mean the weights were not checked first.
  const args = (weights: string, out: string, widths = "4,4,8,8") => [
    "--db",
    `faces=scut:${join(root, "no-such-database")}`,
    "--task",
    "beauty=faces:beauty",
    "--policy",
    "none",
    "--widths",
    widths,
    "--pretrained",
    weights,
    "--out",
    out,
  ];
  const cases: [string, string, RegExp][] = [
    [truncated, "4,4,8,8", /Cannot read \.pth file ".*truncated\.pth"/],
    [
      MALICIOUS_PTH,
      "4,4,8,8",
      /Cannot read \.pth file ".*malicious\.pth": pickle references global "os\.system"/,
    ],
    [
      NARROW_PTH,
      "8,8,16,16",
      /Cannot import ".*resnet18_narrow\.pth": tensor "conv1\.weight" has shape \[4, 3, 7, 7\], expected \[8, 3, 7, 7\]/,
    ],
    [
      join(root, "absent.pth"),
      "4,4,8,8",
      /Cannot read pretrained weights ".*absent\.pth": file not found/,
    ],
  ];
  for (const [i, [weights, widths, message]] of cases.entries()) {
    const out = join(root, `run-${i}`);
    const r = await run("train", args(weights, out, widths));
    assert.equal(r.code, 1, `${weights}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /SCUT|no-such-database/, "data was read before the weights");
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound, "the run folder was created");
  }
  await assert.rejects(Deno.stat(join(root, "pwned.txt")), Deno.errors.NotFound);
  // Good weights pass the check, and the run goes on to read the (missing) data.
  const ok = await run("train", args(NARROW_PTH, join(root, "run-ok")));
  assert.equal(ok.code, 1);
  assert.match(ok.stderr, /Cannot read SCUT-FBP5500 at ".*no-such-database"/);
});

Deno.test("cleanup", async () => {
  net.dispose();
  await Deno.remove(root, { recursive: true });
});
