import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('dyingWithParent', () => {
  it('ends the child when its parent is SIGKILLed', async () => {
    // A parent that starts `sleep 60` the way syctl up starts Envoy and nats-server (the built module), then prints its pid.
    const parent = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { spawn } from 'node:child_process';
         import { dyingWithParent } from ${JSON.stringify(new URL('../dist/src/child-process.js', import.meta.url).href)};
         const c = dyingWithParent('sleep', ['60']);
         const child = spawn(c.file, c.args, { stdio: 'ignore' });
         console.log(child.pid);
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const childPid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    await sleep(200);
    expect(alive(childPid)).toBe(true);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (alive(childPid) && Date.now() < deadline) await sleep(50);
    expect(alive(childPid)).toBe(false);
  });
});
