// Container health check for images without curl: exits 0 when the URL answers 2xx within the
// timeout, 1 otherwise. Usage: probe.mjs URL [TIMEOUT_MS]
const [url, timeoutArg] = process.argv.slice(2);
if (url === undefined) {
  console.error('usage: probe URL [TIMEOUT_MS]');
  process.exit(64);
}
const timeoutMs = Number(timeoutArg ?? 2000);
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) console.error(`${url}: HTTP ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  console.error(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
