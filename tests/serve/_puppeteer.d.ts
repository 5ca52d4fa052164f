/**
 * The part of puppeteer-core's API that the serve tests use, typed here. puppeteer-core's
 * own types start with `/// <reference types="node" />`, which in this project's npm graph
 * resolves to the @types/node 14 that exceljs (through @fast-csv) depends on; loaded, those
 * types replace Deno's Node types for the whole `deno check` (node:util loses parseArgs).
 * The tests import puppeteer-core with `// @ts-types` pointing here instead.
 * @module
 */

/** A DOM element as the page functions of `$eval` / `$$eval` see it. */
export interface PageElement {
  /** The element's text. */
  readonly textContent: string | null;
  /** Its class names. */
  readonly classList: { contains(name: string): boolean };
  /** An attribute's value, or null. */
  getAttribute(name: string): string | null;
  /** Descendants matching a CSS selector. */
  querySelectorAll(selector: string): Iterable<PageElement>;
}

/** An element of the page, handled from the test. */
export interface ElementHandle {
  /** Sets the files of an `<input type=file>` and fires its change event. */
  uploadFile(...paths: string[]): Promise<void>;
}

/** A browser tab. */
export interface Page {
  /** Sets the window size in CSS pixels. */
  setViewport(viewport: { width: number; height: number }): Promise<void>;
  /** Loads a URL. */
  goto(url: string): Promise<unknown>;
  /** Waits until a JavaScript expression, evaluated in the page, is true. */
  waitForFunction(expression: string, options?: { timeout?: number }): Promise<unknown>;
  /** The first element matching a CSS selector, or null. */
  $(selector: string): Promise<ElementHandle | null>;
  /** Runs `fn` in the page on the first element matching `selector`. */
  $eval<R>(selector: string, fn: (element: PageElement) => R): Promise<R>;
  /** Runs `fn` in the page on every element matching `selector`. */
  $$eval<R>(selector: string, fn: (elements: PageElement[]) => R): Promise<R>;
  /** Saves a screenshot. */
  screenshot(options: { path: string; type?: "png"; fullPage?: boolean }): Promise<unknown>;
}

/** A running browser. */
export interface Browser {
  /** Opens a tab. */
  newPage(): Promise<Page>;
  /** Closes the browser and its process. */
  close(): Promise<void>;
}

/** What `launch` takes. */
export interface LaunchOptions {
  /** The browser executable (puppeteer-core downloads none). */
  executablePath: string;
  /** Run without a window. */
  headless?: boolean;
  /** Extra command-line flags of the browser. */
  args?: string[];
}

/** The puppeteer-core default export. */
declare const puppeteer: {
  /** Starts a browser. */
  launch(options: LaunchOptions): Promise<Browser>;
};
export default puppeteer;
