// The kubeconfig credential plug-in helm runs (see src/kubernetes/credentialServer.ts): bundled
// beside index.js as kubeCredential.js and started with the task's own node.
import { printExecCredential } from '../../src/kubernetes/credentialPlugin.js';

void printExecCredential(process.argv[2], process.stdout, process.stderr).then((code) => {
  process.exitCode = code;
});
