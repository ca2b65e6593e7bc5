// The GraphQL API over HTTP: POST /graphql on this origin with the agent's key.

export const ENDPOINT = '/graphql';

export type Channel = 'WEBCHAT' | 'EMAIL' | 'SMS' | 'WHATSAPP' | 'MESSENGER' | 'INSTAGRAM' | 'TWITTER' | 'VOICE';
export type Scope = 'CHANNEL' | 'PROFILE';
export type ClosedState = 'CLOSED' | 'IGNORED' | 'SPAM';

export interface Row {
  id: string;
  channel: Channel;
  status: 'OPEN' | 'CLOSED';
  closedState: ClosedState | null;
  contact: { id: string; name: string | null; address: string };
  queue: { name: string } | null;
  lastMessage: { id: string; preview: string; sentAt: string } | null;
}

export interface Profile {
  id: string;
  name: string;
  channels: Channel[];
}

export interface Message {
  id: string;
  direction: 'INBOUND' | 'OUTBOUND';
  body: string;
  sentAt: string;
  author: string | null;
}

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface Connection<T> {
  totalCount: number;
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
}

export interface Viewer {
  tenant: string;
  role: string;
  name: string | null;
  preferences: { showRelated: boolean };
}

/** An error the API answered with; code is its extensions.code (UNAUTHENTICATED, RATE_LIMITED, ...). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function gql<T>(key: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(ENDPOINT, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The server cannot be reached.', 'NETWORK', 0);
  }
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${res.status}.`, undefined, res.status);
  }
  if (body.errors && body.errors.length > 0) {
    const e = body.errors[0];
    throw new ApiError(e.message, e.extensions?.code, res.status);
  }
  if (!res.ok || !body.data) throw new ApiError(`The server answered HTTP ${res.status}.`, undefined, res.status);
  return body.data;
}

// --- Operations -----------------------------------------------------------

export const ROW = `fragment Row on Interaction {
  id channel status closedState
  contact { id name address }
  queue { name }
  lastMessage { id preview sentAt }
}`;

const MESSAGES = `fragment Messages on MessageConnection {
  totalCount
  edges { cursor node { id direction body sentAt author } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
}`;

const PANEL = `fragment Panel on InteractionConnection {
  scope totalCount
  edges { cursor node { ...Row } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
}`;

export const MESSAGE_PAGE = 20;
export const RELATED_PAGE = 10;
export const LIST_PAGE = 25;

export const Q_VIEWER = `query Viewer { viewer { tenant role name preferences { showRelated } } }`;

export const Q_RULES = `query Rules { profileRules { attribute enabled } }`;

export const Q_RECENT = `query Recent($after: String) {
  interactions(first: ${LIST_PAGE}, after: $after, status: OPEN) {
    totalCount edges { cursor node { ...Row } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
${ROW}`;

export const Q_FIND = `query Find($key: String!, $value: String!) {
  profileByIdentifier(key: $key, value: $value) {
    id name channels
    interactions(first: ${LIST_PAGE}) { totalCount edges { cursor node { ...Row } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
  }
}
${ROW}`;

export const Q_INTERACTION = `query Interaction($id: ID!) {
  interaction(id: $id) {
    ...Row threadRef createdAt
    profile { id name channels }
    messages(last: ${MESSAGE_PAGE}) { ...Messages }
  }
}
${ROW}
${MESSAGES}`;

export const Q_EARLIER = `query Earlier($id: ID!, $before: String) {
  interaction(id: $id) { id messages(last: ${MESSAGE_PAGE}, before: $before) { ...Messages } }
}
${MESSAGES}`;

export const Q_RELATED = `query Related($id: ID!, $scope: RelatedScope, $after: String) {
  interaction(id: $id) { id profile { id } related(first: ${RELATED_PAGE}, after: $after, scope: $scope) { ...Panel } }
}
${ROW}
${PANEL}`;

export const M_PREFS = `mutation SetPreferences($showRelated: Boolean) {
  setPreferences(input: { showRelated: $showRelated }) { preferences { showRelated } userErrors { message } }
}`;

export const S_RELATED = `subscription RelatedChanged($id: ID!) {
  relatedChanged(interactionId: $id) { kind scope interactionId interaction { ...Row } }
}
${ROW}`;

export const S_INTERACTION = `subscription InteractionUpdated($id: ID!) {
  interactionUpdated(id: $id) { ...Row profile { id name channels } }
}
${ROW}`;

export interface Interaction extends Row {
  threadRef: string;
  createdAt: string;
  profile: Profile | null;
  messages: Connection<Message>;
}

export interface RelatedChange {
  kind: 'ADDED' | 'UPDATED' | 'REMOVED';
  scope: Scope;
  interactionId: string;
  interaction: Row | null;
}
