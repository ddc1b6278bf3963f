// The client half of the kubeconfig credential plug-in that helm runs: a client-go exec plug-in
// (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins)
// that asks the running task for an ExecCredential over its private unix socket and prints it.
// It holds no secret of its own and takes nothing secret on its command line; it only imports
// node:net, so its bundle stays a few kilobytes.
import { connect } from 'node:net';

/** Longest wait for the task's answer: an Entra token request (with its retries) fits well inside. */
const ANSWER_TIMEOUT_MS = 120_000;

/** The task's answer: the ExecCredential document client-go reads, or why there is none. */
export type CredentialAnswer = { credential: object } | { error: string };

/** Connects to `socketPath`, writes the ExecCredential to `stdout`; resolves with the exit code. */
export async function printExecCredential(socketPath: string | undefined, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  const fail = (message: string) => {
    stderr.write(`kube-credential: ${message}\n`);
    return 1;
  };
  if (!socketPath) return fail('no socket path given; this program is run by helm from the kubeconfig PrivateAksDeploy writes.');
  let text: string;
  try {
    text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(socketPath);
      socket.setTimeout(ANSWER_TIMEOUT_MS, () => socket.destroy(new Error(`no answer within ${ANSWER_TIMEOUT_MS / 1000} s`)));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'the deploy task that serves it has ended' : (error as Error).message;
    return fail(`cannot get a credential from ${socketPath}: ${reason}`);
  }
  let answer: CredentialAnswer;
  try {
    answer = JSON.parse(text) as CredentialAnswer;
  } catch {
    return fail('the deploy task sent an answer that is not JSON.');
  }
  if ('error' in answer) return fail(answer.error);
  stdout.write(`${JSON.stringify(answer.credential)}\n`);
  return 0;
}
