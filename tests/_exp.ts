import { join } from "node:path";
import { loadBackend } from "../src/backend/load.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";
import { RUN_DEFAULTS } from "../src/train/run_config.ts";
import { train } from "../src/train/trainer.ts";
const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = "/tmp/fbpexp";
const [count, size, img, batch, lr, wu, po, re] = Deno.args.map(Number);
const r = await train({
  ...RUN_DEFAULTS,
  name: "x",
  out: join(root, "runs", String(Date.now())),
  databases: [{
    name: "faces",
    source:
      `synthetic:dir=${root}/faces${count}-${size},count=${count},size=${size},seed=3,genders=F,style=1,labels=beauty,labelNoise=0`,
  }, {
    name: "people",
    source:
      `synthetic:dir=${root}/people${count}-${size},count=${count},size=${size},seed=4,labels=gender,labelNoise=0`,
  }],
  tasks: [{ name: "beauty", database: "faces", label: "beauty", lambda: 1 }, {
    name: "gender",
    database: "people",
    label: "gender",
    lambda: 0.6,
  }],
  widths: (Deno.env.get("W") ?? "8,8,16,16").split(",").map(Number) as [
    number,
    number,
    number,
    number,
  ],
  imageSize: img,
  resize: Math.round(img * 1.125),
  batch,
  lr,
  epochs: { warmup: wu, policy: po, retrain: re, baseline: 4 },
  workers: 0,
  dropout: 0.1,
}, { backend });
for (const h of r.history) {
  console.log(h.stage, h.epoch, h.loss.toFixed(3), JSON.stringify(h.tasks));
}
for (const [t, m] of Object.entries(r.tasks)) {
  console.log(
    t,
    "test",
    m.test.accuracy.toFixed(3),
    "train",
    m.train.accuracy.toFixed(3),
    JSON.stringify(m.test.confusion),
  );
}
console.log("seconds", r.trainSeconds.toFixed(1), "policy", JSON.stringify(r.policy));
