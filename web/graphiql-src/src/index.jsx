// Entry point of the GraphiQL page served by the Related gateway at /graphiql.
// Everything (code, styles, fonts) is bundled; the page talks only to its own
// origin: HTTP POST /graphql for queries and mutations, and WebSocket
// (graphql-transport-ws) ws(s)://<same host>/graphql for subscriptions.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
import { StrictMode, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

import '@graphiql/react/font/roboto.css';
import '@graphiql/react/font/fira-code.css';
import '@graphiql/react/dist/style.css';
import 'graphiql/src/style.css';
import './page.css';

const ENDPOINT = '/graphql';

// The example opens the Related panel of a demo interaction: once the key is
// known, the page picks an open interaction that has related ones (exampleID)
// and puts its id in the Variables tab.
const DEFAULT_QUERY = `# The Related panel of a demo interaction.
# Run it: Ctrl-Enter, or the pink button.
# Its id is in Variables, your key in Headers.
# Docs (top left) list every type and field.

query Panel($id: ID!) {
  interaction(id: $id) {
    id channel status closedState
    contact { name address }
    queue { name }
    lastMessage { body sentAt }
    related(first: 20) {
      scope totalCount
      edges { cursor node { id channel status closedState queue { name } contact { name } lastMessage { body sentAt } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
`;

const KEY_STORAGE = 'related.graphiql.authorization';

// authorizationOf reads the Authorization value out of the Headers tab's
// JSON text; undefined when the text does not parse or has none.
function authorizationOf(headersText) {
  try {
    const h = JSON.parse(headersText || '{}');
    const k = Object.keys(h).find((n) => n.toLowerCase() === 'authorization');
    return k && typeof h[k] === 'string' ? h[k].trim() : undefined;
  } catch {
    return undefined;
  }
}

// asAuthorization turns what a person pastes (a bare key, "Bearer rk_...",
// or the whole {"Authorization": ...} object) into the header's value.
function asAuthorization(pasted) {
  const text = pasted.trim();
  const fromJSON = text.startsWith('{') ? authorizationOf(text) : undefined;
  const value = fromJSON ?? text;
  return /^bearer\s/i.test(value) ? value : `Bearer ${value}`;
}

// exampleID checks the key and finds the open interaction with the most
// related ones: the example query then shows a real panel. It throws with a
// message to show when the key is refused.
async function exampleID(authorization) {
  const res = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json', Authorization: authorization },
    body: JSON.stringify({
      operationName: 'Example',
      query: 'query Example { interactions(first: 25, status: OPEN) { edges { node { id related(first: 1) { totalCount } } } } }',
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) {
    throw new Error(body.errors?.[0]?.message ?? 'the server refused this key');
  }
  if (!res.ok && !body.data) {
    throw new Error(body.errors?.[0]?.message ?? `the server answered ${res.status}`);
  }
  let best = null;
  for (const { node } of body.data?.interactions?.edges ?? []) {
    if (!best || node.related.totalCount > best.related.totalCount) best = node;
  }
  return best?.id ?? '';
}

// KeyPrompt asks for the API key before GraphiQL loads, so the schema is
// fetched with it: the docs and autocompletion work from the start.
function KeyPrompt({ onKey, error: initialError }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(initialError ?? '');
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    if (!value.trim()) {
      setError('Paste an API key first.');
      return;
    }
    setBusy(true);
    setError('');
    const authorization = asAuthorization(value);
    try {
      const id = await exampleID(authorization);
      onKey(authorization, id);
    } catch (err) {
      setError(`That key did not work: ${err.message}`);
      setBusy(false);
    }
  }
  return (
    <form className="key-prompt" data-testid="key-prompt" onSubmit={submit}>
      <h1>Related GraphQL API</h1>
      <label htmlFor="api-key">API key</label>
      <input id="api-key" type="password" autoComplete="off" spellCheck={false} placeholder="rk_..." value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
      <button type="submit" disabled={busy}>{busy ? 'Checking…' : 'Open GraphiQL'}</button>
      {error && (
        <p className="key-error" role="alert">
          {error}
        </p>
      )}
      <p className="key-help">
        On its first start on the embedded database, <code>relatedd serve</code> prints an admin key for tenant{' '}
        <code>demo</code>. Make another with <code>go run ./cmd/relatedd keys create --tenant demo --role admin --name you</code>.
        The key stays in this browser tab (session storage) and goes to the server in the Authorization header.
      </p>
    </form>
  );
}

function App() {
  const [authorization, setAuthorization] = useState(() => sessionStorage.getItem(KEY_STORAGE) ?? '');
  const [example, setExample] = useState(null);
  const [error, setError] = useState('');
  // A stored key is checked again (it may have been revoked), and gives the
  // example its id.
  useEffect(() => {
    if (!authorization || example !== null) return;
    exampleID(authorization).then(setExample, (err) => {
      sessionStorage.removeItem(KEY_STORAGE);
      setAuthorization('');
      setError(`The saved key did not work: ${err.message}`);
    });
  }, [authorization, example]);
  // A new fetcher for each key: GraphiQL fetches the schema again whenever
  // its fetcher changes, so editing the Authorization header in the Headers
  // tab brings the docs and autocompletion of that key at once.
  const keyedFetcher = useMemo(() => (params, opts) => fetcher(params, opts), [authorization]);
  const timer = useRef(null);
  const onEditHeaders = useCallback(
    (text) => {
      clearTimeout(timer.current);
      timer.current = setTimeout(() => {
        const a = authorizationOf(text);
        if (a && a !== authorization) {
          sessionStorage.setItem(KEY_STORAGE, a);
          setAuthorization(a);
        }
      }, 500);
    },
    [authorization],
  );
  if (!authorization || example === null) {
    if (authorization && !error) return <p className="graphiql-boot">Loading GraphiQL…</p>;
    return (
      <KeyPrompt
        error={error}
        onKey={(a, id) => {
          sessionStorage.setItem(KEY_STORAGE, a);
          setError('');
          setExample(id);
          setAuthorization(a);
        }}
      />
    );
  }
  return (
    <GraphiQL
      fetcher={keyedFetcher}
      defaultHeaders={JSON.stringify({ Authorization: authorization }, null, 2)}
      defaultTabs={[{ query: DEFAULT_QUERY }]}
      variables={JSON.stringify({ id: example }, null, 2)}
      defaultEditorToolsVisibility="variables"
      isHeadersEditorEnabled
      onEditHeaders={onEditHeaders}
    />
  );
}

function webSocketURL(path) {
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}${path}`;
}

// Browsers cannot put headers on a WebSocket handshake, so the contents of the
// Headers tab go into the connection_init payload instead (graphql-ws
// connectionParams). One lazy client is kept per distinct set of headers: it
// opens the socket on the first subscription and closes it when the last one
// ends, so an abandoned client holds no connection.
let wsClient = null;
let wsClientKey = null;
function wsClientFor(headers) {
  const params = headers && typeof headers === 'object' ? headers : {};
  const key = JSON.stringify(params);
  if (wsClient === null || key !== wsClientKey) {
    wsClient = createClient({ url: webSocketURL(ENDPOINT), connectionParams: params, lazy: true });
    wsClientKey = key;
  }
  return wsClient;
}

const httpFetcher = createGraphiQLFetcher({ url: ENDPOINT });

// Queries and mutations go over HTTP; subscriptions go over the WebSocket
// client for the current headers.
function fetcher(params, opts) {
  const headers = opts && opts.headers;
  if (!opts || !opts.documentAST || !isSubscription(opts.documentAST, params.operationName)) {
    return httpFetcher(params, opts);
  }
  return createGraphiQLFetcher({ url: ENDPOINT, wsClient: wsClientFor(headers) })(params, opts);
}

function isSubscription(doc, operationName) {
  const ops = doc.definitions.filter((d) => d.kind === 'OperationDefinition');
  const op = operationName ? ops.find((d) => d.name && d.name.value === operationName) : ops.length === 1 ? ops[0] : undefined;
  return Boolean(op && op.operation === 'subscription');
}

createRoot(document.getElementById('graphiql')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
