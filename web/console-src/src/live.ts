// Live updates: one graphql-ws (graphql-transport-ws) connection per signed-in
// key to ws(s)://<this host>/graphql. Browsers cannot set headers on a
// WebSocket handshake, so the key travels in the connection_init payload.
// The client retries forever (except when the key is refused) and resubscribes
// on its own; listeners learn the connection state so the page can show it,
// and a reconnect is announced so views can reload what they may have missed.
import { createClient, type Client } from 'graphql-ws';
import { ENDPOINT } from './api';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface Live {
  subscribe<T>(query: string, variables: Record<string, unknown>, next: (data: T) => void, error: (message: string) => void): () => void;
  onState(fn: (state: LiveState) => void): () => void;
  /** Called after the connection came back following a drop. */
  onReconnect(fn: () => void): () => void;
  state(): LiveState;
  dispose(): void;
}

function webSocketURL(path: string): string {
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}${path}`;
}

function closeCode(e: unknown): number | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number'
    ? (e as { code: number }).code
    : undefined;
}

export function connectLive(key: string): Live {
  let state: LiveState = 'connecting';
  let everConnected = false;
  const stateListeners = new Set<(s: LiveState) => void>();
  const reconnectListeners = new Set<() => void>();
  const set = (s: LiveState) => {
    if (s === state) return;
    state = s;
    stateListeners.forEach((fn) => fn(s));
  };

  const client: Client = createClient({
    url: webSocketURL(ENDPOINT),
    connectionParams: { Authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    // 4403: the key was refused or revoked; retrying cannot help.
    shouldRetry: (e) => closeCode(e) !== 4403,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** retries, 8000) + Math.random() * 300)),
    onNonLazyError: () => {
      /* reported through the closed event */
    },
    on: {
      connecting: () => set(everConnected ? 'reconnecting' : 'connecting'),
      connected: (_socket, _payload, wasRetry) => {
        const again = everConnected || wasRetry;
        everConnected = true;
        set('live');
        if (again) reconnectListeners.forEach((fn) => fn());
      },
      closed: (e) => {
        if (closeCode(e) === 4403) set('refused');
        else if (state !== 'refused') set(everConnected ? 'reconnecting' : 'connecting');
      },
    },
  });

  return {
    subscribe(query, variables, next, error) {
      return client.subscribe<any>(
        { query, variables },
        {
          next: (r) => {
            if (r.errors && r.errors.length > 0) error(r.errors[0].message);
            else if (r.data) next(r.data);
          },
          error: (e) => {
            // Close events end here only when the client gave up retrying.
            if (e instanceof Error) error(e.message);
            else if (Array.isArray(e) && e.length > 0) error(String(e[0].message));
            else if (closeCode(e) !== undefined) error(`connection closed (${closeCode(e)})`);
            else error('live updates failed');
          },
          complete: () => {},
        },
      );
    },
    onState(fn) {
      stateListeners.add(fn);
      return () => stateListeners.delete(fn);
    },
    onReconnect(fn) {
      reconnectListeners.add(fn);
      return () => reconnectListeners.delete(fn);
    },
    state: () => state,
    dispose() {
      stateListeners.clear();
      reconnectListeners.clear();
      client.dispose();
    },
  };
}
