/**
 * Rasteriser for synthetic faces: shapes in face-local coordinates (head half-height 1,
 * y down) are alpha-blended, with one-pixel anti-aliased edges, into an RGB float image
 * that is then lit, noised and returned as RGBA bytes for imagescript. Each shape is only
 * evaluated inside its bounding box, so a 96×96 face costs about a millisecond.
 * @module
 */

import type { Rng } from "../../random/rng.ts";
import type { FaceFeatures, Rgb } from "./features.ts";

/** A shape: signed distance (face units, negative inside) and a colour per point. */
interface Shape {
  /** Bounding circle in face units: centre and radius. */
  cx: number;
  cy: number;
  r: number;
  dist: (u: number, v: number) => number;
  color: Rgb | ((u: number, v: number) => Rgb);
  alpha?: number;
}

/** Approximate signed distance to an ellipse (exact on the axes, good near the edge). */
function ellipse(cx: number, cy: number, rx: number, ry: number, rot = 0) {
  const c = Math.cos(rot), s = Math.sin(rot);
  const m = Math.min(rx, ry);
  return (u: number, v: number) => {
    const du = u - cx, dv = v - cy;
    const x = du * c + dv * s, y = -du * s + dv * c;
    return (Math.sqrt((x / rx) ** 2 + (y / ry) ** 2) - 1) * m;
  };
}

function ellipseShape(
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  color: Shape["color"],
  rot = 0,
): Shape {
  return { cx, cy, r: Math.max(rx, ry) + 0.05, dist: ellipse(cx, cy, rx, ry, rot), color };
}

const shade = (c: Rgb, k: number): Rgb => [c[0] * k, c[1] * k, c[2] * k];

/** A blemish: a reddened patch of skin, then a dark spot (half-axes, colour, opacity). */
const BLEMISH: readonly [number, number, Rgb, number][] = [
  [0.32, 0.26, [205, 70, 70], 0.6],
  [0.07, 0.07, [110, 45, 40], 1],
];

/** Builds the shapes of a face in drawing order (back to front). */
function faceShapes(f: FaceFeatures, rng: Rng): Shape[] {
  const a = f.aspect;
  const shapes: Shape[] = [];
  // Clothes and neck.
  shapes.push(ellipseShape(0, 1.95, 1.7, 0.75, f.clothes));
  shapes.push({
    cx: 0,
    cy: 1.1,
    r: 0.75,
    dist: (u, v) => Math.max(Math.abs(u) - 0.32 * a, Math.abs(v - 1.1) - 0.6),
    color: shade(f.skin, 0.88),
  });
  // Long hair behind the head: longer hair reaches further down.
  if (f.hair > 0.4) {
    const len = 0.5 + 0.9 * f.hair;
    shapes.push(ellipseShape(0, 0.05 + len / 2, a * 1.32, 0.95 + len / 2, f.hairColor));
  }
  // Poor skin is flushed all over as well as blotchy.
  const m = Math.min(0.6, 0.07 * f.blemishes);
  const flushed = f.skin.map((c, i) => c * (1 - m) + [205, 90, 85][i] * m) as Rgb;
  shapes.push(ellipseShape(-a * 0.98, 0.05, 0.1, 0.17, shade(flushed, 0.93)));
  shapes.push(ellipseShape(a * 0.98, 0.05, 0.1, 0.17, shade(flushed, 0.93)));
  // Head, darker towards the rim to suggest roundness.
  const head = ellipse(0, 0, a, 1);
  shapes.push({
    cx: 0,
    cy: 0,
    r: 1.05,
    dist: head,
    color: (u, v) => shade(flushed, 1 - 0.14 * ((u / a) ** 2 + v * v) ** 2),
  });
  // Hair cap on top: the head's upper part above a hairline, a little larger than the head.
  const hairline = -0.5 - 0.08 * (1 - f.hair);
  const cap = ellipse(0, 0.02, a * 1.07, 1.08);
  const hair = (u: number, v: number) => Math.max(cap(u, v), v - hairline - 0.05 * Math.cos(u * 6));
  shapes.push({ cx: 0, cy: -0.5, r: 0.75, dist: hair, color: f.hairColor });
  // Blemishes, mostly on the cheeks, under the eyes and mouth: a dark spot in a reddened
  // patch of skin, so poor skin shows as blotchy red even at low resolution.
  for (let i = 0; i < f.blemishes; i++) {
    const where = rng.int(5); // 0, 1: left cheek, 2, 3: right cheek, 4: forehead
    const [cx, cy, sx, sy] = where === 4
      ? [0, -0.38, 0.35, 0.06]
      : [where < 2 ? -0.45 : 0.45, 0.2, 0.2, 0.2];
    const bx = (cx + rng.uniform(-sx, sx)) * a / 0.8, by = cy + rng.uniform(-sy, sy);
    for (const [rx, ry, color, alpha] of BLEMISH) {
      const spot = ellipseShape(bx, by, rx, ry, color);
      const d = spot.dist;
      // Only on bare skin: inside the head, outside the hair.
      spot.dist = (u, v) => Math.max(d(u, v), head(u, v), -hair(u, v));
      shapes.push({ ...spot, alpha });
    }
  }
  // Brows and eyes, each eye outlined by a dark lash line so its size shows at low
  // resolution; asymmetry lowers and shrinks the right eye.
  const ex = 0.34 * a / 0.8, ey = -0.12;
  const rx = 0.07 + 0.17 * f.eye, ry = rx * (0.5 + 0.2 * f.eye);
  for (const side of [-1, 1]) {
    const right = side === 1;
    const k = right ? 1 - 0.5 * f.asym : 1;
    const y = ey + (right ? 0.16 * f.asym : 0);
    shapes.push(
      ellipseShape(side * ex, y - ry * k - 0.09, 0.15, f.brow, f.hairColor, side * 0.12),
    );
    shapes.push(ellipseShape(side * ex, y, rx * k + 0.04, ry * k + 0.04, [45, 30, 30]));
    shapes.push(ellipseShape(side * ex, y, rx * k, ry * k, [245, 245, 240]));
    shapes.push(ellipseShape(side * ex, y, rx * 0.5 * k, ry * 0.95 * k, f.eyeColor));
    shapes.push(ellipseShape(side * ex, y, rx * 0.22 * k, rx * 0.22 * k, [10, 10, 10]));
  }
  // Nose: a soft shadow.
  shapes.push({ ...ellipseShape(0.02, 0.13, 0.06, 0.14, shade(f.skin, 0.78)), alpha: 0.7 });
  // Mouth: a thick parabola whose corners rise with the smile (y points down), slanted
  // by asymmetry; a smile shows a band of teeth between the lips.
  const my = 0.47, w = f.mouth, thick = f.drawnGender === 0 ? 0.06 : 0.045;
  const slant = 0.25 * f.asym;
  const curve = (u: number) => my - f.smile * 0.15 * ((u / w) ** 2 - 0.5) + slant * u;
  shapes.push({
    cx: 0,
    cy: my,
    r: w + 0.15,
    dist: (u, v) => Math.max(Math.abs(v - curve(u)) - thick, Math.abs(u) - w),
    color: f.lipColor,
  });
  if (f.smile > 0) {
    const teeth = 0.035 * f.smile;
    shapes.push({
      cx: 0,
      cy: my,
      r: w + 0.15,
      dist: (u, v) => Math.max(Math.abs(v - curve(u)) - teeth, Math.abs(u) - 0.8 * w),
      color: [242, 240, 232],
    });
  }
  return shapes;
}

/** Renders a face as RGBA bytes (`size`×`size`, alpha 255). */
export function drawFace(f: FaceFeatures, size: number, rng: Rng): Uint8ClampedArray {
  const n = size * size;
  const img = new Float32Array(n * 3);
  const [b0, b1] = f.background;
  for (let y = 0; y < size; y++) {
    const t = y / size;
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) img[o + c] = b0[c] * (1 - t) + b1[c] * t;
    }
  }
  // Face frame: centre, pixels per face unit, tilt.
  const R = 0.3 * size * f.scale;
  const fx = size * (0.5 + f.dx), fy = size * (0.45 + f.dy);
  const cos = Math.cos(f.tilt), sin = Math.sin(f.tilt);
  for (const s of faceShapes(f, rng)) {
    // Bounding box of the shape's circle in pixels (rotation keeps circles circles).
    const px = fx + R * (s.cx * cos - s.cy * sin), py = fy + R * (s.cx * sin + s.cy * cos);
    const pr = R * s.r + 1;
    const x0 = Math.max(0, Math.floor(px - pr)), x1 = Math.min(size - 1, Math.ceil(px + pr));
    const y0 = Math.max(0, Math.floor(py - pr)), y1 = Math.min(size - 1, Math.ceil(py + pr));
    const alpha = s.alpha ?? 1;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const gx = x + 0.5 - fx, gy = y + 0.5 - fy;
        const u = (gx * cos + gy * sin) / R, v = (-gx * sin + gy * cos) / R;
        const cover = Math.min(1, Math.max(0, 0.5 - s.dist(u, v) * R)) * alpha;
        if (cover <= 0) continue;
        const col = typeof s.color === "function" ? s.color(u, v) : s.color;
        const o = (y * size + x) * 3;
        for (let c = 0; c < 3; c++) img[o + c] += (col[c] - img[o + c]) * cover;
      }
    }
  }
  // Directional light over the whole picture, then sensor noise.
  const lx = Math.cos(f.lightAngle), ly = Math.sin(f.lightAngle);
  const out = new Uint8ClampedArray(n * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const k = 1 + f.light * ((x / size - 0.5) * lx + (y / size - 0.5) * ly) * 2;
      for (let c = 0; c < 3; c++) out[i * 4 + c] = img[i * 3 + c] * k + f.noise * rng.normal();
      out[i * 4 + 3] = 255;
    }
  }
  return out;
}
