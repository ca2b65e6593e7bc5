// Entry point of the GraphiQL page served by the Related gateway at /graphiql.
// Everything (code, styles, fonts) is bundled; the page talks only to its own
// origin: HTTP POST /graphql for queries and mutations, and WebSocket
// (graphql-transport-ws) ws(s)://<same host>/graphql for subscriptions.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import '@graphiql/react/font/roboto.css';
import '@graphiql/react/font/fira-code.css';
import '@graphiql/react/dist/style.css';
import 'graphiql/src/style.css';
import './page.css';

const ENDPOINT = '/graphql';

const DEFAULT_QUERY = `# Related GraphQL API
#
# Needs an API key? In the Headers tab, enter
#   {"Authorization": "Bearer <key>"}
# Set "id" in Variables, then press Ctrl-Enter.

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

const DEFAULT_VARIABLES = `{
  "id": ""
}
`;

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

// Queries and mutations go over HTTP (multipart incremental delivery is
// supported); subscriptions go over the WebSocket client for the current headers.
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
    <GraphiQL
      fetcher={fetcher}
      defaultTabs={[{ query: DEFAULT_QUERY, variables: DEFAULT_VARIABLES }]}
      defaultEditorToolsVisibility="headers"
      isHeadersEditorEnabled
    />
  </StrictMode>,
);
