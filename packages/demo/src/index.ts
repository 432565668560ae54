export { behaviourFromEnv, listenPort, type DemoBehaviour } from './behaviour.js';
export { startHttpEcho } from './http-echo.js';
export { startGrpcEcho, echoClientConstructor, echoServiceName, type EchoReply, type EchoRequest } from './grpc-echo.js';
export { runLoad, xdsBootstrap, useControlPlane, type LoadOptions, type LoadReport } from './load.js';
export { demoPlan, type DemoPlan } from './demo-services.js';
export { httpRequest, type HttpAnswer, type HttpRequestOptions } from './http-client.js';
