/** What clients of the event-streamer need (the `syctl events` command, scripts), without the server. */
export { watchEvents, type WatchOptions } from './watch-client.js';
export { formatEventLine, formatEventJson, type WatchedEvent } from './event-format.js';
