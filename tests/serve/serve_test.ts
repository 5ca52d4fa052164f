/**
 * `deno task serve` driven by a person's browser: headless Chromium (Debian's `chromium`,
 * through puppeteer-core) opens the page of a tiny trained run, uploads a face photo, and
 * the prediction it shows must equal `deno task predict --json` on the same file; a text
 * file gets a clear message on the page and the next photo still works. The page's
 * screenshot goes to the test's temporary folder; with FBP_WRITE_DOCS=1 it is also copied
 * to docs/serve.png (the picture the docs show), so an ordinary run leaves the tree as it
 * was. The server's refusals (too large, declared or streamed; wrong type; empty; damaged;
 * no X-File-Name; another site's Host; too many uploads at once) are checked with plain
 * requests. Without Chromium the browser test is skipped, its name saying why.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
// @ts-types="./_puppeteer.d.ts"
import puppeteer from "puppeteer-core";
import type { Browser, Page } from "./_puppeteer.d.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { saveCheckpoint } from "../../src/models/checkpoint.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { runTask } from "../_run_helpers.ts";

const chromium = Deno.env.get("PUPPETEER_EXECUTABLE_PATH") ?? "/usr/bin/chromium";
const hasChromium = await Deno.stat(chromium).then((s) => s.isFile, () => false);
const tool = (name: string) => new URL(`../../tasks/${name}.ts`, import.meta.url).pathname;
const docsScreenshot = new URL("../../docs/serve.png", import.meta.url).pathname;

const run = runTask;

/** A tiny two-task run (beauty on "faces", gender on "people"): its folder and face images. */
async function tinyRun(root: string): Promise<{ checkpoint: string; faces: string[] }> {
  const faces = `synthetic:dir=${root}/faces,count=60,size=64,seed=5,genders=F,labels=beauty`;
  const people = `synthetic:dir=${root}/people,count=60,size=64,seed=6,labels=gender`;
  const out = join(root, "run");
  const r = await run("train", [
    ...["--db", `faces=${faces}`, "--db", `people=${people}`],
    ...["--task", "beauty=faces:beauty:1", "--task", "gender=people:gender:0.6"],
    ...["--widths", "4,4,8,8", "--image-size", "32", "--batch", "8", "--workers", "0"],
    ...["--warmup-epochs", "1", "--policy-epochs", "1", "--retrain-epochs", "1"],
    ...["--out", out],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const images = join(root, "faces", "Images");
  return {
    checkpoint: join(out, "checkpoint.safetensors"),
    faces: ["AF1.jpg", "AF2.jpg"].map((f) => join(images, f)),
  };
}

/** A running `deno task serve`: its page's URL, and `stop`, which returns its stderr. */
interface Server {
  url: string;
  stop(): Promise<string>;
}

/**
 * `deno task serve` on any free port, once it listens. The child is stopped again when it
 * fails to start, so a failed start leaks nothing.
 */
async function startServer(checkpoint: string): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", tool("serve"), "--checkpoint", checkpoint, "--port", "0"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch (e) {
      // The child already exited (a crash, or a failed start): nothing to stop.
      if (!(e instanceof TypeError)) throw e;
    }
    await child.status;
    await lines.cancel();
    return await stderr;
  };
  let seen = "";
  try {
    while (!/Serving (\S+)/.test(seen)) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`serve exited before listening: ${await stderr}`);
      seen += value;
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: /Serving (\S+)/.exec(seen)![1], stop };
}

interface Shown {
  label: number;
  probabilities: number[];
}

/** The predictions the page shows, read from its DOM. */
function shownPredictions(page: Page): Promise<Record<string, Shown>> {
  return page.$$eval("[data-task]", (cards) =>
    Object.fromEntries(cards.map((c) => [
      c.getAttribute("data-task")!,
      {
        label: Number(c.getAttribute("data-label")),
        probabilities: [...c.querySelectorAll("[data-probability]")].map((b) =>
          Number(b.getAttribute("data-probability"))
        ),
      },
    ])));
}

/** Uploads `file` with the page's file input and waits for prediction number `n` or an error. */
async function upload(page: Page, file: string, expect: "done" | "error", n: number) {
  const input = await page.$("#file");
  assert.ok(input, "the page has a file input");
  await input.uploadFile(file);
  // A string: it runs in the page, where `document` exists. The file input, disabled while
  // an upload is on its way, must be usable again.
  const done = `document.body.dataset.state === "${expect}"` +
    (expect === "done" ? ` && document.body.dataset.results === "${n}"` : "") +
    ` && !document.getElementById("file").disabled`;
  await page.waitForFunction(done, { timeout: 60_000 });
}

/** predict --json for one image: its tasks object. */
async function predictJson(checkpoint: string, image: string): Promise<Record<string, Shown>> {
  const r = await run("predict", ["--checkpoint", checkpoint, "--json", image]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trimEnd().split("\n").at(-1)!)[0].tasks;
}

function assertSamePrediction(shown: Record<string, Shown>, want: Record<string, Shown>) {
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(want).sort());
  for (const [task, w] of Object.entries(want)) {
    assert.equal(shown[task].label, w.label, `${task}: label`);
    assert.equal(shown[task].probabilities.length, w.probabilities.length);
    w.probabilities.forEach((p, k) =>
      assert.ok(
        Math.abs(shown[task].probabilities[k] - p) <= 1e-7,
        `${task} class ${k}: page ${shown[task].probabilities[k]}, predict ${p}`,
      )
    );
  }
}

Deno.test({
  name: hasChromium
    ? "serve page in headless Chromium shows predict's prediction, and a bad upload's message"
    : `serve page in headless Chromium: skipped, no Chromium at ${chromium} (apt-get install chromium)`,
  ignore: !hasChromium,
  // puppeteer's WebSocket and the child's pipes outlive single steps by design; both are
  // closed in the finally block.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "fbp-serve-" });
    let server: Server | undefined;
    let browser: Browser | undefined;
    let stderr = "";
    try {
      const { checkpoint, faces } = await tinyRun(root);
      server = await startServer(checkpoint);
      browser = await puppeteer.launch({
        executablePath: chromium,
        headless: true,
        // Root in a container has no user namespace for Chromium's sandbox.
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
      });
      const page = await browser.newPage();
      await page.setViewport({ width: 1100, height: 560 });
      await page.goto(server.url);
      await page.waitForFunction(`document.body.dataset.state === "idle"`);
      // The policy map and the run summary come from the checkpoint and its metrics.json.
      const metrics = JSON.parse(await Deno.readTextFile(join(root, "run", "metrics.json")));
      const policy = await page.$$eval(
        "[data-policy]",
        (rows) =>
          Object.fromEntries(rows.map((r) => [
            r.getAttribute("data-policy")!,
            [...r.querySelectorAll("td")].map((td) => td.classList.contains("exec") ? 1 : 0),
          ])),
      );
      assert.deepEqual(policy, metrics.policy);
      const summary = await page.$$eval("[data-summary]", (rows) => rows.map((r) => r.textContent));
      assert.equal(summary.length, 2);
      assert.match(
        summary[0]!,
        new RegExp(`beauty${(100 * metrics.tasks.beauty.test.accuracy).toFixed(1)}%`),
      );

      await upload(page, faces[0], "done", 1);
      assertSamePrediction(await shownPredictions(page), await predictJson(checkpoint, faces[0]));
      const screenshot = join(root, "serve.png");
      await page.screenshot({ path: screenshot, type: "png", fullPage: true });
      if (Deno.env.get("FBP_WRITE_DOCS") === "1") await Deno.copyFile(screenshot, docsScreenshot);

      const notes = join(root, "notes.txt");
      await Deno.writeTextFile(notes, "not a photo");
      await upload(page, notes, "error", 1);
      const message = await page.$eval("#message", (m) => m.textContent);
      assert.match(
        message!,
        /Cannot use "notes\.txt": it is not an image \(its type is text\/plain\)/,
      );

      await upload(page, faces[1], "done", 2);
      assertSamePrediction(await shownPredictions(page), await predictJson(checkpoint, faces[1]));
    } finally {
      try {
        await browser?.close();
      } finally {
        stderr = await server?.stop() ?? "";
        await Deno.remove(root, { recursive: true });
      }
    }
    // After the finally block, so that a failure above is the one reported.
    assert.equal(stderr, "", "the server printed no error");
  },
});

/** A request body of `total` zero bytes sent in 64 KiB chunks, with no Content-Length. */
function streamedZeros(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      const n = Math.min(2 ** 16, total - sent);
      if (n === 0) return controller.close();
      controller.enqueue(new Uint8Array(n));
      sent += n;
    },
  });
}

/**
 * `GET path` with `host` in the Host header, over a raw HTTP/1.1 connection: fetch always
 * sends the URL's own host. Returns the status and the reply's text (head and body).
 */
async function getWithHost(url: string, path: string, host: string) {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
  );
  // Reading the whole reply closes the connection.
  const reply = await new Response(conn.readable).text();
  const body = reply.slice(reply.indexOf("\r\n\r\n") + 4);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(reply)?.[1]), reply, body };
}

Deno.test("serve refuses bad uploads, other hosts and too many uploads, and keeps serving", async () => {
  const root = await Deno.makeTempDir({ prefix: "fbp-serve-api-" });
  let server: Server | undefined;
  let stderr = "";
  try {
    // A random-weight checkpoint is enough here: no prediction is compared.
    const net = new MultiTaskNet(
      parseNetworkConfig({
        tasks: [{ name: "beauty", classes: 5, database: "scut" }],
        widths: [4, 4, 8, 8],
        imageSize: 32,
      }),
      { backend: new ReferenceBackend() },
    );
    const checkpoint = join(root, "checkpoint.safetensors");
    try {
      await saveCheckpoint(checkpoint, net);
    } finally {
      net.dispose();
    }
    server = await startServer(checkpoint);
    const predictUrl = new URL("/api/predict", server.url);
    const post = async (body: BodyInit, type: string, name: string | null = "x") => {
      const headers: Record<string, string> = { "content-type": type };
      if (name !== null) headers["x-file-name"] = encodeURIComponent(name);
      const r = await fetch(predictUrl, { method: "POST", body, headers });
      return { status: r.status, body: await r.json() };
    };
    const cases: [BodyInit, string, string | null, number, RegExp][] = [
      [
        new Uint8Array(21 * 2 ** 20),
        "image/png",
        "big.png",
        413,
        /"big\.png": it is 21\.0 MB, more than the limit of 20\.0 MB/,
      ],
      [
        // No Content-Length: refused once the bytes read pass the limit.
        streamedZeros(20 * 2 ** 20 + 2 ** 17),
        "image/png",
        "streamed.png",
        413,
        /"streamed\.png": it is over 20\.0 MB, more than the limit of 20\.0 MB/,
      ],
      [
        "GIF89a",
        "image/gif",
        "anim.gif",
        415,
        /"anim\.gif": it is a GIF image \(image\/gif\); fbp reads JPEG and PNG/,
      ],
      [
        "%PDF-1.4",
        "application/pdf",
        "cv.pdf",
        415,
        /"cv\.pdf": it is not an image \(its type is application\/pdf\)/,
      ],
      ["", "image/jpeg", "empty.jpg", 400, /"empty\.jpg": it is empty \(0 bytes\)/],
      ["hello", "image/jpeg", "fake.jpg", 422, /"fake\.jpg": not a JPEG or PNG file/],
      [
        new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2]),
        "image/jpeg",
        "cut.jpg",
        422,
        /"cut\.jpg": /,
      ],
      // Without the custom header a browser would have sent it cross-site, unasked.
      ["hello", "image/jpeg", null, 400, /the upload has no X-File-Name header/],
    ];
    for (const [body, type, name, status, message] of cases) {
      const r = await post(body, type, name);
      assert.equal(r.status, status, `${name}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, message);
    }

    // Another site's name for this address (DNS rebinding) is refused; the server's own
    // names are answered.
    const port = new URL(server.url).port;
    const rebound = await getWithHost(server.url, "/api/model", `attacker.example:${port}`);
    assert.equal(rebound.status, 403, rebound.reply);
    assert.match(
      JSON.parse(rebound.body).error,
      /Cannot answer a request for host "attacker\.example:\d+": this page answers only "127\.0\.0\.1:/,
    );
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      assert.equal((await getWithHost(server.url, "/api/model", host)).status, 200, host);
    }

    // Four uploads whose bodies are still arriving hold every slot: a fifth is refused with
    // 503 before its bytes are read. (Until the four are counted, a probe is an ordinary
    // bad upload, answered 422 at once.)
    const held: ReadableStreamDefaultController<Uint8Array>[] = [];
    const sending: Promise<void>[] = [];
    const holding = Array.from({ length: 4 }, () => {
      let sent = () => {};
      sending.push(new Promise((resolve) => (sent = resolve)));
      // Settled here, so a refused upload fails the assertion below, never as an
      // unhandled rejection while the probes run.
      return post(
        new ReadableStream<Uint8Array>({
          start(controller) {
            held.push(controller);
            controller.enqueue(new TextEncoder().encode("hel"));
          },
          // Asked for more: its first bytes are on the way, so the server has it.
          pull() {
            sent();
          },
        }),
        "image/jpeg",
        "slow.jpg",
      ).catch((e: Error) => ({ status: 0, body: { error: e.message } }));
    });
    // A probe must not take a slot that a slow upload still needs: probe only once all
    // four are sending (and the server has had a moment to count them).
    await Promise.all(sending);
    await new Promise((r) => setTimeout(r, 200));
    let probe = await post("hello", "image/jpeg", "fifth.jpg");
    for (let i = 0; probe.status !== 503 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      probe = await post("hello", "image/jpeg", "fifth.jpg");
    }
    assert.equal(probe.status, 503, JSON.stringify(probe.body));
    assert.match(probe.body.error, /Cannot take "fifth\.jpg" now: 4 uploads are already being/);
    for (const c of held) {
      c.enqueue(new TextEncoder().encode("lo"));
      c.close();
    }
    for (const r of await Promise.all(holding)) assert.equal(r.status, 422, JSON.stringify(r.body));
    // The slots are free again.
    assert.equal((await post("hello", "image/jpeg", "sixth.jpg")).status, 422);

    // Still serving: the page, the model, and a 404 that says where the page is.
    assert.equal((await fetch(server.url).then((r) => r.text())).includes("<title>fbp"), true);
    const model = await fetch(new URL("/api/model", server.url)).then((r) => r.json());
    assert.deepEqual(model.tasks.map((t: { name: string }) => t.name), ["beauty"]);
    assert.equal(model.summary, null);
    const missing = await fetch(new URL("/nowhere", server.url));
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /the page is at \//);
  } finally {
    stderr = await server?.stop() ?? "";
    await Deno.remove(root, { recursive: true });
  }
  assert.equal(stderr, "", "the server printed no error");
});

Deno.test("serve: --help, and one clear error line for a missing checkpoint or bad port", async () => {
  const help = await run("serve", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: deno task serve --checkpoint FILE \[--port N\]/);
  const cases: [string[], RegExp][] = [
    [[], /Cannot serve: --checkpoint FILE is required/],
    [
      ["--checkpoint", "missing.safetensors"],
      /Cannot read checkpoint "missing\.safetensors": file not found/,
    ],
    [
      ["--checkpoint", "x.safetensors", "--port", "70000"],
      /Cannot parse --port: expected an integer from 0 to 65535: current value is "70000"/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await run("serve", args);
    assert.equal(r.code, 1, `${args.join(" ")}: exit ${r.code}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  }
});
