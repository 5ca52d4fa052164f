/**
 * Private: renders a Vega-Lite spec to an SVG string headless. Vega's "none" renderer
 * needs no DOM or canvas; without node-canvas it estimates text widths from character
 * counts, so the output does not depend on installed fonts (the SVG names the generic
 * "sans-serif" family and the viewer picks one).
 * @module
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** Shared look: white background, no chart border, room for long block names. */
const CONFIG = {
  background: "white",
  font: "sans-serif",
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: "start" },
} as const;

/**
 * Renders a Vega-Lite spec (data inline) to SVG.
 * @param spec a Vega-Lite spec; the shared config is merged under its own
 * @returns the SVG document text, starting with `<svg`
 * @throws {Error} when Vega-Lite or Vega rejects the spec
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const full = { ...spec, config: { ...CONFIG, ...spec.config } } as TopLevelSpec;
  // Warnings are about style choices of a spec, not about the data; errors still throw.
  const compiled = compile(full, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
