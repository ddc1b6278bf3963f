// `npm run bench`: every benchmark, printed as medians and ratios against the tools users would
// otherwise pick, measured in this one run. Exits non-zero when a target is missed.
// `npm run bench -- build-image` runs only the named ones.
import { printReport, type BenchReport } from './harness.js';
import { benchBuildBuildkit } from './buildBuildkit.js';
import { benchBuildImage } from './buildImage.js';
import { benchDeploy } from './deploy.js';
import { benchPushChart } from './pushChart.js';
import { benchImportImage } from './importImage.js';
import { benchPushImage } from './pushImage.js';
import { benchScanImage } from './scanImage.js';

const benchmarks: Record<string, () => Promise<BenchReport[]>> = {
  'push-image': benchPushImage,
  'build-image': benchBuildImage,
  'build-buildkit': benchBuildBuildkit,
  'push-chart': benchPushChart,
  deploy: benchDeploy,
  'import-image': benchImportImage,
  'scan-image': benchScanImage,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benchmarks));
if (unknown.length) throw new Error(`no benchmark named ${unknown.join(', ')}; there are ${Object.keys(benchmarks).join(', ')}`);

let missed = 0;
for (const [name, benchmark] of Object.entries(benchmarks)) {
  if (wanted.length && !wanted.includes(name)) continue;
  for (const report of await benchmark()) {
    printReport(report);
    missed += report.targets.filter((target) => !target.met).length;
  }
}
console.log(missed ? `\n${missed} target(s) missed.` : '\nAll targets met.');
process.exitCode = missed ? 1 : 0;
