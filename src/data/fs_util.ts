/**
 * File-system helpers shared by the readers: case-insensitive lookup (copies of the
 * releases differ in capitalisation, e.g. All_labels.txt vs All_Labels.txt) and listing.
 * @module
 */

import { join } from "node:path";

/** Names of the entries of `dir` (files and folders), sorted; empty if it does not exist. */
export async function listDir(dir: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Path of the entry of `dir` whose name matches `pattern` (case-insensitive), or undefined. */
export async function findEntry(
  dir: string,
  pattern: string | RegExp,
  kind: "file" | "dir" = "file",
): Promise<string | undefined> {
  const test = typeof pattern === "string"
    ? (n: string) => n.toLowerCase() === pattern.toLowerCase()
    : (n: string) => pattern.test(n);
  for (const e of await listDir(dir)) {
    // Follow symlinks: a database folder is often a link into a shared disk.
    const isDir = e.isDirectory || (e.isSymlink && (await isDirectory(join(dir, e.name))));
    if (test(e.name) && (kind === "dir") === isDir) return join(dir, e.name);
  }
  return undefined;
}

/** True when `path` is an existing directory (following links). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** True when `path` is an existing file (following links). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** Image file extensions the decoder reads. */
export const IMAGE_EXTENSIONS: readonly string[] = [".jpg", ".jpeg", ".png"];

/** True when the file name has an image extension the decoder reads. */
export function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** "a character device", "a FIFO" … for a path that is not a regular file or a folder. */
export function fileKind(info: Deno.FileInfo): string {
  return info.isCharDevice
    ? "a character device"
    : info.isBlockDevice
    ? "a block device"
    : info.isFifo
    ? "a FIFO (named pipe)"
    : info.isSocket
    ? "a socket"
    : info.isSymlink
    ? "a symbolic link"
    : "something other than a regular file";
}

/**
 * Why an image a list or manifest names cannot be read, or null when it is a regular file:
 * "not found", or what it is instead (a device, a FIFO, a folder…).
 */
export async function listedImageProblem(path: string): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return `image "${path}" not found`;
  }
  if (info.isFile) return null;
  return `image "${path}" is ${info.isDirectory ? "a folder" : fileKind(info)}, not an image file`;
}
