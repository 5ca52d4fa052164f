/**
 * The data layer of fbp: sources (SCUT-FBP5500, manifest CSV, class folders, list files,
 * synthetic faces), splits, and the input pipeline that turns them into float32 NCHW
 * batches. See DESIGN.md §5.
 * @module
 */

export { cropNormalize, IMAGENET_MEAN, IMAGENET_STD, randomCrop } from "./augment.ts";
export type { CropParams } from "./augment.ts";
export { BadImageError, decodeImage, readImage } from "./decode.ts";
export type { Rgba } from "./decode.ts";
export { beautyGrade } from "./grade.ts";
export type { Grade, GradeRule } from "./grade.ts";
export { collectInfo, formatInfo } from "./info.ts";
export type { DataInfo, InfoOptions, PartInfo, SplitInfo } from "./info.ts";
export { BatchLoader, drawTogether } from "./loader.ts";
export type { BadImagePolicy, Batch, LoaderOptions } from "./loader.ts";
export { readClassFolders } from "./folders.ts";
export type { FolderOptions } from "./folders.ts";
export { readListFile } from "./list_file.ts";
export type { ListOptions } from "./list_file.ts";
export { readManifest, writeManifest } from "./manifest.ts";
export { benchPipeline } from "./pipeline_bench.ts";
export type { PipelineBenchOptions, PipelineBenchResult } from "./pipeline_bench.ts";
export { loadResized, prepareImage } from "./prepare.ts";
export type { PrepareRequest } from "./prepare.ts";
export type { CachedRgb } from "./cache.ts";
export { formatProblem, ProblemLog } from "./problems.ts";
export type { Problem } from "./problems.ts";
export { readRatings } from "./ratings.ts";
export type { RatingEntry, RatingsTable } from "./ratings.ts";
export { countLabels, SCUT_CLASSES } from "./records.ts";
export type { ClassOrigin, Dataset, ImageRecord, Split } from "./records.ts";
export { resizeRgb, shorterSideSize } from "./resize.ts";
export { Rng } from "../random/rng.ts";
export { readScut } from "./scut.ts";
export { formatSource, parseSource, readSource, SOURCE_KINDS } from "./source.ts";
export type { SourceSpec, SyntheticSourceOptions } from "./source.ts";
export {
  assertDisjoint,
  carveValidation,
  chooseSplit,
  splitRecords,
  stratifiedSplit,
} from "./split.ts";
export type { SplitOptions } from "./split.ts";
export { checkSynthOptions, generateSynthetic, SYNTH_DEFAULTS } from "./synth/generate.ts";
export type { SynthOptions, SynthResult } from "./synth/generate.ts";
export { DecodePool } from "./worker_pool.ts";
export type { PoolOptions } from "./worker_pool.ts";
