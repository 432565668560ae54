export { createApiServer, type ApiServer, type ApiServerOptions } from './server.js';
export {
  statusFromSpec,
  type ServiceRef,
  type ServiceStatusProvider,
  type NodesProvider,
  type TranslationErrorsProvider,
} from './status-from-spec.js';
export {
  natsStatusPublisher,
  natsDeployPublisher,
  statusEventOf,
  type StatusEvent,
  type StatusPublisher,
  type DeployEvent,
  type DeployPublisher,
} from './events.js';
export { hashToken, newToken, type Principal, type Access } from './auth.js';
export {
  errorBody,
  serviceStatus,
  xdsNodeStatus,
  xdsDelivery,
  type ErrorBody,
  type ServiceStatus,
  type RevisionStatus,
  type EndpointStatus,
  type XdsDelivery,
  type XdsNodeStatus,
  type ServiceView,
  type TenantView,
} from './schemas.js';
