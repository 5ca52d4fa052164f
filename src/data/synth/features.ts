/**
 * Features of a synthetic face and the hidden rules that make its labels learnable:
 * the true beauty score is a fixed function of drawn features (eye size, symmetry, skin
 * blemishes, smile, face proportions), and gender shows in hair length, brow thickness,
 * jaw width and lip colour. The beauty traits are drawn around one shared "appeal" per
 * face (attractive faces tend to have several good traits, as in real ratings), so the
 * score spreads over all five grades and each trait is evidence of it; the appeal is
 * independent of sex, so beauty and gender stay different tasks. Units are face-local:
 * the head's half-height is 1.
 * @module
 */

import type { Rng } from "../../random/rng.ts";

/** RGB colour, 0–255 per channel. */
export type Rgb = [number, number, number];

/** Everything the renderer draws for one face. */
export interface FaceFeatures {
  /** 0 = female, 1 = male: the sex the features were drawn for (may differ from the label). */
  drawnGender: number;
  /** 0 = Asian, 1 = Caucasian palette. */
  race: number;
  /** Head width / height (half-axes ratio). */
  aspect: number;
  /** Eye size in [0, 1]. */
  eye: number;
  /** Asymmetry in [0, 1]: one eye lower and smaller, the mouth slanted. */
  asym: number;
  /** Number of skin blemishes (0–12): red blotches with a dark spot; they also flush the skin. */
  blemishes: number;
  /** Smile in [−1, 1]: corners up (1, teeth showing) or down (−1). */
  smile: number;
  /** Mouth half-width. */
  mouth: number;
  /** Hair length in [0, 1]: 0 short cap, 1 long hair to the shoulders. */
  hair: number;
  /** Brow thickness (face units). */
  brow: number;
  skin: Rgb;
  hairColor: Rgb;
  lipColor: Rgb;
  eyeColor: Rgb;
  clothes: Rgb;
  background: [Rgb, Rgb];
  /** Pose: offset of the face centre (fraction of image), tilt (radians), scale. */
  dx: number;
  dy: number;
  tilt: number;
  scale: number;
  /** Lighting direction (radians) and strength, pixel noise σ (0–255 units). */
  lightAngle: number;
  light: number;
  noise: number;
}

/** Ideal head aspect per gender: deviation from it lowers beauty. */
const IDEAL_ASPECT = [0.76, 0.84];

/** Correlation of each beauty trait with the face's shared appeal. */
const APPEAL = 0.95;

/**
 * Each beauty trait as `centre + step · t` for a standard normal trait value t (high t is
 * attractive; the step is negative where a larger feature is worse). {@link trueScore}
 * standardises the drawn features back with the same constants.
 */
const TRAIT = {
  eye: [0.5, 0.28],
  asym: [0.3, -0.2],
  blemishes: [5, -3],
  smile: [0.15, 0.55],
  /** Deviation of the head aspect from the ideal (either direction). */
  aspect: [0.05, -0.03],
} as const;

/** The true score is `SCORE_MEAN + SCORE_SPREAD · z` for the weighted trait sum z. */
const SCORE_MEAN = 3, SCORE_SPREAD = 1.0;

/** Weights of the standardised traits in the true score (they add up to 1). */
const WEIGHT = { blemishes: 0.35, eye: 0.25, asym: 0.15, smile: 0.15, aspect: 0.1 } as const;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const jitter = (rng: Rng, c: Rgb, d: number): Rgb =>
  c.map((v) => clamp(v + rng.uniform(-d, d), 0, 255)) as Rgb;

/** Colour `c` made lighter or darker by a factor in [lo, hi], with a little hue jitter. */
function shadeJitter(rng: Rng, c: Rgb, lo: number, hi: number, d: number): Rgb {
  const k = rng.uniform(lo, hi);
  return jitter(rng, c.map((v) => v * k) as Rgb, d);
}

/** A clothing colour: a grey of random lightness tinted towards a random colour (muted). */
function clothing(rng: Rng): Rgb {
  const grey = rng.uniform(40, 200), tint = [rng.int(256), rng.int(256), rng.int(256)];
  return tint.map((v) => 0.6 * grey + 0.4 * v) as Rgb;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

const SKIN: readonly Rgb[][] = [
  [[232, 196, 160], [218, 176, 138], [240, 208, 176]], // A
  [[244, 208, 188], [226, 180, 150], [250, 220, 200]], // C
];
const HAIR: readonly Rgb[][] = [
  [[25, 20, 18], [45, 32, 25], [60, 42, 30]],
  [[40, 28, 20], [95, 62, 35], [190, 150, 90], [140, 80, 40]],
];
/** Background palettes per style: the "database" look, a domain shift between sources. */
const STYLES: readonly { bg: readonly Rgb[]; light: number; noise: number; scale: number }[] = [
  { bg: [[205, 215, 228], [225, 225, 225], [200, 220, 210]], light: 0.12, noise: 3, scale: 1 },
  { bg: [[70, 60, 55], [95, 80, 70], [60, 70, 90]], light: 0.3, noise: 7, scale: 0.9 },
  { bg: [[240, 235, 220], [180, 200, 230], [230, 200, 200]], light: 0.05, noise: 2, scale: 1.1 },
];

/** Number of background styles {@link sampleFeatures} knows. */
export const STYLE_COUNT: number = STYLES.length;

/** Draws the features of one face of the given sex and race in a background style. */
export function sampleFeatures(
  rng: Rng,
  gender: number,
  race: number,
  style: number,
): FaceFeatures {
  const st = STYLES[style % STYLES.length];
  const male = gender === 1;
  const bg = pick(rng, st.bg);
  // Beauty traits: standard normals that share the face's appeal (independent of sex).
  const appeal = rng.normal();
  const trait = (k: keyof typeof TRAIT) =>
    TRAIT[k][0] + TRAIT[k][1] * (APPEAL * appeal + Math.sqrt(1 - APPEAL ** 2) * rng.normal());
  const eye = clamp(trait("eye"), 0, 1), asym = clamp(trait("asym"), 0, 1);
  const blemishes = clamp(Math.round(trait("blemishes")), 0, 12);
  const smile = clamp(trait("smile"), -1, 1);
  const deviation = clamp(trait("aspect"), 0, 0.14) * (rng.chance(0.5) ? 1 : -1);
  return {
    drawnGender: gender,
    race,
    aspect: IDEAL_ASPECT[gender] + deviation,
    eye,
    asym,
    blemishes,
    smile,
    mouth: rng.uniform(0.2, 0.3),
    hair: male ? rng.uniform(0, 0.3) : rng.uniform(0.55, 1),
    brow: male ? rng.uniform(0.045, 0.065) : rng.uniform(0.02, 0.032),
    skin: shadeJitter(rng, pick(rng, SKIN[race]), 0.93, 1.05, 4),
    hairColor: jitter(rng, pick(rng, HAIR[race]), 10),
    lipColor: male ? jitter(rng, [170, 110, 100], 12) : jitter(rng, [200, 60, 80], 20),
    eyeColor: jitter(rng, race === 0 ? [45, 30, 20] : pick(rng, [[60, 90, 140], [70, 50, 30]]), 10),
    clothes: clothing(rng),
    background: [jitter(rng, bg, 15), jitter(rng, bg, 25)],
    dx: rng.uniform(-0.04, 0.04),
    dy: rng.uniform(-0.04, 0.04),
    tilt: rng.uniform(-0.14, 0.14),
    scale: st.scale * rng.uniform(0.92, 1.08),
    lightAngle: rng.uniform(0, 2 * Math.PI),
    light: st.light * rng.uniform(0.5, 1.5),
    noise: st.noise,
  };
}

/**
 * The true mean score (1–5) of a face: a fixed weighted sum of drawn features. This is
 * what simulated raters perceive, with their own bias and noise on top.
 */
export function trueScore(f: FaceFeatures): number {
  const t = (k: keyof typeof TRAIT, v: number) => (v - TRAIT[k][0]) / TRAIT[k][1];
  const z = WEIGHT.eye * t("eye", f.eye) + WEIGHT.asym * t("asym", f.asym) +
    WEIGHT.blemishes * t("blemishes", f.blemishes) + WEIGHT.smile * t("smile", f.smile) +
    WEIGHT.aspect * t("aspect", Math.abs(f.aspect - IDEAL_ASPECT[f.drawnGender]));
  return clamp(SCORE_MEAN + SCORE_SPREAD * z, 1, 5);
}
