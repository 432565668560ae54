import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler } from 'fastify-type-provider-zod';
import type { ControlPlaneConfig, Logger } from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { EndpointAllowlist, parseImageRegistries, registryCounter, type ConfigStore } from '../store/index.js';
import { Authenticator, setPrincipal, type Access } from './auth.js';
import type { ApiContext } from './context.js';
import { RouteTable } from './allowed-methods.js';
import { ApiError, clientErrorHandler, notFound, sendError, toApiError, validatorCompiler } from './errors.js';
import { natsStatusPublisher, type StatusPublisher } from './events.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { registerDeploymentRoutes, type DeploymentHooks } from './routes/deployments.js';
import { registerServiceRoutes } from './routes/services.js';
import { registerTenantRoutes } from './routes/tenants.js';
import type { NodesProvider, ServiceStatusProvider, TranslationErrorsProvider } from './status-from-spec.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; routes without it (the OpenAPI document) need no token. */
    access?: Access;
  }
}

export interface ApiServerOptions {
  /** An open store: its view is loaded, so the API answers from complete state. */
  store: ConfigStore;
  config: Pick<ControlPlaneConfig, 'API_PORT' | 'SWITCHYARD_ADMIN_TOKEN' | 'SWITCHYARD_ENDPOINT_CIDRS'> &
    Partial<Pick<ControlPlaneConfig, 'SWITCHYARD_IMAGE_REGISTRIES'>>;
  logger: Logger;
  /** Where the API's metrics go (the host's `runtime.observability.registry`). */
  registry: Registry;
  /** Connected xDS clients, for `GET /v1/nodes`. */
  nodes: NodesProvider;
  /** Completes a service's status (endpoints, health, xDS delivery); without it the status is what the spec says. */
  status?: ServiceStatusProvider;
  /** Where service change events go; defaults to JetStream on the store's connection. */
  publishStatus?: StatusPublisher;
  /** The deployment controller; without it the deployment routes are not served. */
  deployments?: DeploymentHooks;
  /** Why the translator refuses a service's current spec (Envoy then keeps its last good translation). */
  translationErrors?: TranslationErrorsProvider;
}

export interface ApiServer {
  app: FastifyInstance;
  /** Listens on `API_PORT` (0.0.0.0) unless told otherwise; resolves with the bound port. */
  listen(options?: { port?: number; host?: string }): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
}

const openApiInfo = {
  title: 'Switchyard management API',
  version: '1',
  description:
    'Tenants, their domain grants and tokens; services, their specs, traffic splits and status; connected xDS clients. ' +
    'Every error has the body {status, code, message, issues[{field, message}]}.',
};

/**
 * Bodies are JSON or nothing: `text/plain` (which fastify parses by default) answers 415 like
 * every other media type, and an empty JSON body is no body (`POST …/rollback` needs none).
 */
function acceptJsonOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else void parseJson(request, body as string, done);
  });
}

/**
 * The management API: fastify with zod schemas (which also generate `/openapi.json`), bearer
 * auth, and writes that go through the config store with optimistic concurrency.
 * Throws ConfigError when `SWITCHYARD_ENDPOINT_CIDRS` is not a CIDR list.
 */
export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { store, config, registry } = options;
  const logger = options.logger.child({ component: 'api' });
  const allowlist = EndpointAllowlist.parse(config.SWITCHYARD_ENDPOINT_CIDRS);
  const auth = new Authenticator(config.SWITCHYARD_ADMIN_TOKEN, store.view);
  if (!auth.adminEnabled) logger.warn('SWITCHYARD_ADMIN_TOKEN is not set: admin routes (tenants, tokens, nodes) refuse every token');

  let tail: Promise<unknown> = Promise.resolve();
  const ctx: ApiContext = {
    store,
    allowlist,
    imageRegistries: parseImageRegistries(config.SWITCHYARD_IMAGE_REGISTRIES),
    auth,
    logger,
    publishStatus: options.publishStatus ?? natsStatusPublisher(store.nc, logger, registry),
    status: options.status,
    nodes: options.nodes,
    translationErrors: options.translationErrors ?? (() => []),
    exclusive: <T>(write: () => Promise<T>): Promise<T> => {
      const run = tail.then(write, write);
      tail = run.catch(() => undefined);
      return run;
    },
  };

  const app: FastifyInstance = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    // Path parameters are DNS labels: longer ones get the schema's 400 naming the parameter, not a 414.
    routerOptions: { maxParamLength: 2048 },
    clientErrorHandler,
    frameworkErrors: (err, _request, reply) => sendError(reply, toApiError(err)),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  acceptJsonOnly(app);
  const routes = new RouteTable();
  app.addHook('onRoute', (route) => routes.add(route.url, route.method));

  const requests = registryCounter(
    registry,
    'switchyard_control_plane_api_requests_total',
    'Management API requests by route and status code.',
    ['method', 'route', 'status'],
  );
  // Unmatched requests are answered before their body is read (a QUERY without Content-Type included).
  const unmatched = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routes.allowed(path);
    if (allowed.length === 0) return sendError(reply, notFound('path', `no route ${request.method} ${path}; /openapi.json lists them`));
    reply.header('allow', allowed.join(', '));
    return sendError(
      reply,
      new ApiError(405, [{ field: 'method', message: `${path} allows ${allowed.join(', ')}, not ${request.method}` }]),
    );
  };
  app.addHook('onRequest', async (request, reply) => {
    if (request.is404) return unmatched(request, reply);
    const access = request.routeOptions.config.access;
    if (access === undefined) return;
    const principal = auth.authenticate(request.headers.authorization);
    auth.authorize(principal, access, (request.params as { tenant?: string }).tenant);
    setPrincipal(request, principal);
  });
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.setErrorHandler((err, request, reply) => {
    const apiError = toApiError(err as Error);
    if (apiError.status === 503) logger.warn({ err: (err as Error).message, url: request.url }, 'config store unavailable');
    else if (apiError.status >= 500) logger.error({ err, url: request.url }, 'request failed');
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler(unmatched);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: openApiInfo,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  registerTenantRoutes(app, ctx);
  registerServiceRoutes(app, ctx);
  registerNodeRoutes(app, ctx);
  if (options.deployments) registerDeploymentRoutes(app, ctx, options.deployments);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();

  return {
    app,
    async listen(listenOptions = {}) {
      const host = listenOptions.host ?? '0.0.0.0';
      await app.listen({ port: listenOptions.port ?? config.API_PORT, host });
      const port = (app.server.address() as AddressInfo).port;
      logger.info({ port }, 'management API listening');
      return { port, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}` };
    },
    close: () => app.close(),
  };
}
