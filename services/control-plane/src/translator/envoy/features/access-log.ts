import type { Feature } from '../feature.js';
import { EnvoyType, stringStruct, typed } from '../proto.js';

/** One JSON line per request on Envoy's stdout, with the request ID and the revision's cluster. */
export const accessLog: Feature = {
  name: 'access-log',
  connectionManager(hcm) {
    hcm.access_log = [
      {
        name: 'envoy.access_loggers.stdout',
        typed_config: typed(EnvoyType.StdoutAccessLog, {
          log_format: {
            json_format: stringStruct({
              start_time: '%START_TIME%',
              request_id: '%REQ(X-REQUEST-ID)%',
              authority: '%REQ(:AUTHORITY)%',
              method: '%REQ(:METHOD)%',
              path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
              protocol: '%PROTOCOL%',
              response_code: '%RESPONSE_CODE%',
              grpc_status: '%GRPC_STATUS%',
              response_flags: '%RESPONSE_FLAGS%',
              bytes_received: '%BYTES_RECEIVED%',
              bytes_sent: '%BYTES_SENT%',
              duration_ms: '%DURATION%',
              upstream_cluster: '%UPSTREAM_CLUSTER%',
              upstream_host: '%UPSTREAM_HOST%',
              client_address: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%',
              user_agent: '%REQ(USER-AGENT)%',
              route: '%ROUTE_NAME%',
            }),
          },
        }),
      },
    ];
  },
};
