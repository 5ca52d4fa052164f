/**
 * A one-line progress bar on standard error (images/s and ETA), redrawn in place on a
 * terminal and printed sparsely otherwise (CI logs stay short).
 * @module
 */

const encoder = new TextEncoder();

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Draws progress lines. */
export class ProgressBar {
  readonly #tty = Deno.stderr.isTerminal();
  #lastPrint = 0;

  /** Shows `label` at `done` of `total`, with images/s over `seconds` and the ETA. */
  update(
    label: string,
    done: number,
    total: number,
    images: number,
    seconds: number,
    extra = "",
  ): void {
    const now = performance.now();
    const finished = done >= total;
    if (!this.#tty && !finished && now - this.#lastPrint < 10_000) return;
    this.#lastPrint = now;
    const width = 24, filled = Math.round((done / Math.max(1, total)) * width);
    const rate = seconds > 0 ? images / seconds : 0;
    const eta = done > 0 ? (seconds / done) * (total - done) : Infinity;
    const line = `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ` +
      `${rate.toFixed(1)} img/s ETA ${clock(eta)}${extra ? ` ${extra}` : ""}`;
    if (this.#tty) Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line}${finished ? "\n" : ""}`));
    else Deno.stderr.writeSync(encoder.encode(line + "\n"));
  }

  /** Prints a message on its own line. */
  note(message: string): void {
    Deno.stderr.writeSync(encoder.encode(`${this.#tty ? "\r\x1b[2K" : ""}${message}\n`));
  }
}
