// Live updates: one graphql-ws (graphql-transport-ws) connection per signed-in
// key to ws(s)://<this host>/graphql. Browsers cannot set headers on a
// WebSocket handshake, so the key travels in the connection_init payload.
//
// The client retries the connection forever (except when the key is refused)
// and graphql-ws resubscribes on its own after a reconnect; listeners learn
// the connection state so the page can show it, and a reconnect is announced
// so views can reload what they may have missed. A subscription the server
// ends with an error that a retry can cure (TOO_SLOW, SHUTTING_DOWN when the
// server restarts, INTERNAL, TOO_MANY_SUBSCRIPTIONS once another tab closes)
// is started again here after a pause, and its view is told to resynchronize.
import { createClient, type Client } from 'graphql-ws';
import { ENDPOINT } from './api';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface SubscribeHandlers<T> {
  next: (data: T) => void;
  /** The subscription stopped for good, or for now (retrying: true). */
  error: (message: string, retrying: boolean) => void;
  /** The subscription was started again after an error: reload what it feeds. */
  resync?: () => void;
}

export interface Live {
  subscribe<T>(query: string, variables: Record<string, unknown>, handlers: SubscribeHandlers<T>): () => void;
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

interface GqlError {
  message: string;
  extensions?: { code?: string };
}

/** Codes of subscription errors that a later retry can cure. */
const RETRYABLE = new Set(['TOO_SLOW', 'SHUTTING_DOWN', 'INTERNAL', 'TOO_MANY_SUBSCRIPTIONS', 'RATE_LIMITED', 'TIMEOUT']);

/** Pause before subscribing again, by attempt; longer for an allowance that other tabs hold. */
function pause(code: string | undefined, attempt: number): number {
  const base = code === 'TOO_MANY_SUBSCRIPTIONS' ? 15_000 : 500;
  return Math.min(base * 2 ** attempt, 30_000) + Math.random() * 300;
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
    subscribe<T>(query: string, variables: Record<string, unknown>, h: SubscribeHandlers<T>) {
      let stopped = false;
      let attempt = 0;
      let unsubscribe: (() => void) | null = null;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const start = (again: boolean) => {
        let failed = false;
        const fail = (message: string, code: string | undefined) => {
          if (failed || stopped) return;
          failed = true;
          const retry = code === undefined || RETRYABLE.has(code);
          // A server shutting down also drops the connection, which the
          // page shows as a whole; only other endings concern one view.
          if (code !== 'SHUTTING_DOWN') h.error(message, retry);
          if (!retry) return;
          timer = setTimeout(() => {
            timer = null;
            if (!stopped) start(true);
          }, pause(code, attempt++));
        };
        unsubscribe = client.subscribe<T>(
          { query, variables },
          {
            next: (r) => {
              const errors = r.errors as readonly GqlError[] | undefined;
              if (errors && errors.length > 0) {
                fail(errors[0].message, errors[0].extensions?.code);
                return;
              }
              attempt = 0;
              if (r.data) h.next(r.data as T);
            },
            error: (e) => {
              // Close events end here only when the client gave up retrying
              // (a refused key): nothing to retry then.
              if (Array.isArray(e) && e.length > 0) fail(String(e[0].message), (e[0] as GqlError).extensions?.code);
              else if (closeCode(e) !== undefined) fail(`connection closed (${closeCode(e)})`, closeCode(e) === 4403 ? 'UNAUTHENTICATED' : undefined);
              else fail(e instanceof Error ? e.message : 'live updates failed', undefined);
            },
            complete: () => {
              // The server ends a subscription only with an error, or when
              // it shuts down: start again unless this side stopped it.
              if (!failed && !stopped) fail('the server ended the live updates', 'SHUTTING_DOWN');
            },
          },
        );
        if (again) h.resync?.();
      };
      start(false);
      return () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        unsubscribe?.();
      };
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
