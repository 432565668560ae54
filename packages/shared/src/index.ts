export {
  ConfigError,
  loadConfig,
  commonEnv,
  grpcTlsEnv,
  grpcSecurityOf,
  controlPlaneEnv,
  statsSinkEnv,
  eventStreamerEnv,
  autoscalerEnv,
  isHost,
  natsServerProblem,
  natsCredentialsOf,
  activatorEnv,
} from './config.js';
export type {
  ControlPlaneConfig,
  StatsSinkConfig,
  EventStreamerConfig,
  AutoscalerConfig,
  ActivatorConfig,
  GrpcSecurity,
  GrpcTlsConfig,
} from './config.js';
export {
  grpcClientCredentials,
  grpcServerCredentials,
  peerIdentities,
  sanIdentities,
  type ClientTlsFiles,
  type PeerCall,
} from './grpc-tls.js';
export { createLogger, type Logger } from './logger.js';
export { Readiness, createObservability, startAdminServer, type Observability, type HealthReporter } from './observability.js';
export { startTracing, stopTracing, tracer, injectTraceContext, extractTraceContext } from './tracing.js';
export {
  connectNats,
  ensureStreams,
  isJetStreamUnavailable,
  openBucket,
  publish,
  publishDurable,
  subscribe,
  untilConnected,
  decodeMessage,
  messageCounters,
  withConsumerSpan,
  type TypedMessage,
  type ReplayFrom,
  type NatsCredentials,
  type NatsConnection,
  type Msg,
  type Subscription,
  type KV,
  type KvEntry,
  type KvWatchEntry,
  type JetStreamClient,
  type JetStreamManager,
} from './nats.js';
export { deliverOptions } from './nats.js';
export {
  accessOf,
  busIdentities,
  busPasswordsFromEnv,
  inboxPrefixOf,
  kindSubjects,
  literalPasswords,
  natsServerAuthorization,
  newBusPasswords,
  passwordsFromEnv,
  passwordVariable,
  permissionsOf,
  permissionTable,
  type Access,
  type BusIdentity,
  type BusPasswords,
  type SubjectPermissions,
} from './bus-permissions.js';
export {
  openStreamReader,
  followStream,
  consumeStream,
  type StreamReader,
  type StreamReaderOptions,
  type StreamFollower,
  type FollowDeps,
} from './stream-follower.js';
export { followBucket, kvStream, kvSubject, type KvChange } from './kv-follower.js';
export * as messages from './messages.js';
export {
  subjectKinds,
  subjectFor,
  subjectPattern,
  parseSubject,
  streams,
  buckets,
  bucketAccess,
  busServices,
  streamsOwner,
  maxGenerationAheadMs,
  generationFromFuture,
  eventStreamerHeartbeat,
  replicaId,
  type SubjectKindName,
  type BusService,
  type PayloadOf,
  type LoadSample,
  type LoadPartial,
  type NodeLoadShare,
  type ScaleDecision,
  type EndpointSet,
  type Endpoint,
  type HealthTransition,
  type InstanceEvent,
  type ServiceStatusEvent,
  type DeploymentEvent,
  type EnvoyEvent,
  type XdsEvent,
  type ActivationPoke,
  type HdsVotes,
  type EventStreamerHeartbeat,
} from './messages.js';
export { dnsLabel, clusterName, parseClusterName, activatorHeaders, type RevisionRef } from './names.js';
export { duration, durationAtMost, timeoutDuration, protoDuration } from './duration.js';
export {
  serviceSpec,
  tenantSpec,
  trafficSplit,
  describeIssues,
  hostname,
  type ServiceSpec,
  type ServiceSpecInput,
  type RouteSpec,
  type RevisionSpec,
  type HealthCheckSpec,
  type ScalingSpec,
  type TenantSpec,
} from './spec.js';
export { scalingSpec } from './spec.js';
export {
  protoIncludeDirs,
  protoFiles,
  loadGrpcPackage,
  grpcService,
  envoyRoot,
  lookupType,
  packAny,
  unpackAny,
  checkMessage,
  TypeUrl,
  typeUrlPrefix,
  type XdsTypeUrl,
  type AnyMessage,
} from './envoy.js';
export {
  startHost,
  listenGrpcShared,
  stopOnSignals,
  runStandalone,
  type Runtime,
  type ConnectionTaker,
  type ServiceHandle,
  type ServiceModule,
  type Host,
  type HostOptions,
} from './host.js';
export { freePort } from './net.js';
export {
  configKeys,
  tenantRecord,
  serviceRecord,
  tokenRecord,
  parseConfigKey,
  type TenantRecord,
  type ServiceRecord,
  type TokenRecord,
} from './store.js';
export { asyncApiDocument, asyncApiYaml } from './asyncapi.js';
export { deploymentRecord, deploymentPhase, deploymentActive, type DeploymentRecord, type DeploymentPhase } from './store.js';
// The test harness's nats-server runner doubles as `syctl up`'s embedded server.
export { NatsServer, waitForPort, type NatsServerOptions } from './testing/nats-server.js';
export { dyingWithParent } from './child-process.js';
