// `npm run bench`: every benchmark, printed as medians and ratios against the tools users would
// otherwise pick, measured in this one run. Exits non-zero when a target is missed.
import { printReport, type BenchReport } from './harness.js';
import { benchDeploy } from './deploy.js';
import { benchPushChart } from './pushChart.js';
import { benchPushImage } from './pushImage.js';
import { benchImportImage } from './importImage.js';
import { benchScanImage } from './scanImage.js';

const benchmarks: (() => Promise<BenchReport[]>)[] = [benchPushImage, benchPushChart, benchDeploy, benchImportImage, benchScanImage];

let missed = 0;
for (const benchmark of benchmarks) {
  for (const report of await benchmark()) {
    printReport(report);
    missed += report.targets.filter((target) => !target.met).length;
  }
}
console.log(missed ? `\n${missed} target(s) missed.` : '\nAll targets met.');
process.exitCode = missed ? 1 : 0;
