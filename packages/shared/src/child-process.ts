import { spawnSync } from 'node:child_process';

let setprivPath: string | null | undefined;

function setpriv(): string | null {
  if (setprivPath === undefined) {
    const probe = spawnSync('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore' });
    setprivPath = probe.error === undefined && probe.status === 0 ? 'setpriv' : null;
  }
  return setprivPath;
}

/**
 * The command line that runs `file` so it gets SIGTERM when this process dies, even by SIGKILL
 * (Linux PR_SET_PDEATHSIG, through util-linux `setpriv`). Where `setpriv` is missing the
 * command runs as given, and only a clean stop ends it.
 */
export function dyingWithParent(file: string, args: readonly string[]): { file: string; args: string[] } {
  const wrapper = setpriv();
  if (wrapper === null) return { file, args: [...args] };
  return { file: wrapper, args: ['--pdeathsig', 'SIGTERM', '--', file, ...args] };
}
