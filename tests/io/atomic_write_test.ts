import assert from "node:assert/strict";
import { writeFileAtomic } from "../../src/io/atomic_write.ts";

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fbp_atomic_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("writeFileAtomic() creates and replaces a file, leaving no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/ckpt.safetensors`;
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual(Deno.readFileSync(path), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, new Uint8Array([4]));
    assert.deepEqual(Deno.readFileSync(path), new Uint8Array([4]));
    await writeFileAtomic(path, new Uint8Array(0));
    assert.equal(Deno.readFileSync(path).length, 0);
    assert.deepEqual(names(dir), ["ckpt.safetensors"]);
  });
});

Deno.test("writeFileAtomic() keeps the permission bits of the file it replaces", {
  ignore: Deno.build.os === "windows",
}, async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/private.bin`;
    Deno.writeFileSync(path, new Uint8Array([0]), { mode: 0o600 });
    Deno.chmodSync(path, 0o600);
    await writeFileAtomic(path, new Uint8Array([1]));
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  });
});

Deno.test("writeFileAtomic() fails on a missing folder without creating anything", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      () => writeFileAtomic(`${dir}/missing/ckpt`, new Uint8Array([1])),
      Deno.errors.NotFound,
    );
    assert.deepEqual(names(dir), []);
  });
});

Deno.test("writeFileAtomic() leaves the old target and no temporary file when rename fails", async () => {
  await withTempDir(async (dir) => {
    // Renaming a file over a non-empty folder fails after the data was fully written.
    const path = `${dir}/target`;
    Deno.mkdirSync(path);
    Deno.writeFileSync(`${path}/keep`, new Uint8Array([7]));
    await assert.rejects(() => writeFileAtomic(path, new Uint8Array(1 << 16)));
    assert.deepEqual(names(dir), ["target"]);
    assert.deepEqual(Deno.readFileSync(`${path}/keep`), new Uint8Array([7]));
  });
});

Deno.test("writeFileAtomic() keeps the previous file whole when the writer is killed", {
  ignore: Deno.build.os === "windows",
}, async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/ckpt.bin`;
    const old = new Uint8Array(1 << 20).fill(0x11);
    Deno.writeFileSync(path, old);
    // The child rewrites the file forever with 16 MiB of one byte value per round; every
    // complete version is uniform, so any torn write would show as mixed bytes.
    const module = new URL("../../src/io/atomic_write.ts", import.meta.url).href;
    const script = `import { writeFileAtomic } from ${JSON.stringify(module)};
      for (let round = 0; ; round++) {
        await writeFileAtomic(${
      JSON.stringify(path)
    }, new Uint8Array(16 << 20).fill(0x20 + (round % 200)));
        console.log(round);
      }`;
    // Kill it at a few points into a write (a plain Deno.writeFile fails this about half
    // the time per kill): wait for one completed round, then a little more.
    for (const delayMs of [3, 15, 40]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--quiet", script],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.getReader();
      await reader.read();
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel();
      const now = Deno.readFileSync(path);
      assert.ok(now.length === old.length || now.length === 16 << 20, `length ${now.length}`);
      assert.ok(now.every((b) => b === now[0]), "the file mixes two versions");
      assert.notEqual(now[0], 0x11, "at least one round completed");
    }
  });
});
