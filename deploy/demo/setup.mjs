// Registers the demo tenant and its service through the management API, so the compose stack
// routes something as soon as it is up. Idempotent (PUTs), retried until the API answers.
//
// Environment: SWITCHYARD_API_URL, SWITCHYARD_ADMIN_TOKEN, DEMO_TENANT, DEMO_DOMAIN,
// DEMO_BLUE_ENDPOINT and DEMO_GREEN_ENDPOINT (address:port), DEMO_GREEN_PERCENT.
const env = process.env;
const api = (env.SWITCHYARD_API_URL ?? 'http://control-plane:8080').replace(/\/$/, '');
const token = env.SWITCHYARD_ADMIN_TOKEN;
const tenant = env.DEMO_TENANT ?? 'demo';
const domain = env.DEMO_DOMAIN ?? 'demo.localhost';
const greenPercent = Number(env.DEMO_GREEN_PERCENT ?? 20);
const deadline = Date.now() + Number(env.DEMO_SETUP_TIMEOUT_MS ?? 60_000);

if (!token) fail('SWITCHYARD_ADMIN_TOKEN is not set');

function fail(message) {
  console.error(`demo-setup: ${message}`);
  process.exit(1);
}

function endpoint(name) {
  const value = env[name];
  const match = value === undefined ? null : /^(.+):(\d+)$/.exec(value);
  if (match === null) fail(`${name} must be address:port, got ${JSON.stringify(value)}`);
  return { address: match[1], port: Number(match[2]) };
}

const host = `hello.${domain}`;
const service = {
  domains: [host],
  protocol: 'http',
  healthCheck: { protocol: 'http', path: '/healthz', interval: '5s', timeout: '2s' },
  revisions: [
    { name: 'blue', endpoints: [endpoint('DEMO_BLUE_ENDPOINT')] },
    { name: 'green', endpoints: [endpoint('DEMO_GREEN_ENDPOINT')] },
  ],
  traffic: [
    { revision: 'blue', percent: 100 - greenPercent },
    { revision: 'green', percent: greenPercent },
  ],
};

async function put(path, body) {
  for (let attempt = 1; ; attempt++) {
    let outcome;
    try {
      const response = await fetch(`${api}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      if (response.ok) return;
      // 4xx means the request is wrong and retrying cannot help.
      if (response.status < 500) fail(`PUT ${path}: HTTP ${response.status} ${text}`);
      outcome = `HTTP ${response.status}`;
    } catch (err) {
      outcome = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) fail(`PUT ${path}: gave up after ${attempt} attempts (${outcome})`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(250 * attempt, 2000)));
  }
}

await put(`/v1/tenants/${tenant}`, { domains: [domain] });
await put(`/v1/tenants/${tenant}/services/hello`, service);
console.log(`demo-setup: tenant "${tenant}" serves ${host}: ${100 - greenPercent}% blue, ${greenPercent}% green`);
