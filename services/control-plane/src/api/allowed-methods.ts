/**
 * Which methods a path supports, for `405 Method Not Allowed` and its `Allow` header
 * (RFC 9110 §15.5.6). Pure: a table of route patterns in fastify's syntax (`/v1/tenants/:tenant`).
 */
export class RouteTable {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];

  add(url: string, methods: string | string[]): void {
    const pattern = patternOf(url);
    const existing = this.routes.find((r) => r.pattern.source === pattern.source);
    const list = typeof methods === 'string' ? [methods] : methods;
    if (existing === undefined) this.routes.push({ pattern, methods: new Set(list) });
    else for (const method of list) existing.methods.add(method);
  }

  /** The methods some route serves on this path (without query), sorted; empty when no route has the path. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes) if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    return [...methods].sort();
  }
}

function patternOf(url: string): RegExp {
  const segments = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    if (segment.startsWith(':')) return '[^/]+';
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${segments.join('/')}$`);
}
