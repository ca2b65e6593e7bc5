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
  /** Its contacts' names, for the person's name in the profile bar. */
  contacts?: { id: string; name: string | null }[];
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
    /** Seconds to wait before retrying, from Retry-After (rate limits). */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/** A mutation's userErrors: the caller's mistake, in the API's words. */
export interface UserError {
  field: string[] | null;
  message: string;
  code: string;
}

/** Thrown for a payload's first userError, so callers handle every failure in one place. */
export class UserErrorsError extends Error {
  constructor(readonly errors: UserError[]) {
    super(errors.map((e) => e.message).join('; '));
  }
}

/** Throws the payload's userErrors, if any. */
export function checkUserErrors(p: { userErrors: UserError[] }) {
  if (p.userErrors.length > 0) throw new UserErrorsError(p.userErrors);
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
  const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  const retryAfter = Number.isFinite(retry) ? retry : null;
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${res.status}.`, res.status === 429 ? 'RATE_LIMITED' : undefined, res.status, retryAfter);
  }
  if (body.errors && body.errors.length > 0) {
    const e = body.errors[0];
    throw new ApiError(e.message, e.extensions?.code, res.status, retryAfter);
  }
  if (!res.ok || !body.data) throw new ApiError(`The server answered HTTP ${res.status}.`, undefined, res.status, retryAfter);
  return body.data;
}

const fieldNames: Record<string, string> = { body: 'the message', state: 'the closed state', id: 'the interaction' };

/**
 * What went wrong, in words for an agent: every refusal code the API
 * documents, the network, and a mutation's userErrors. what names the
 * action ("send the reply").
 */
export function explain(e: unknown, what: string): string {
  if (e instanceof UserErrorsError) {
    return e.errors
      .map((u) => {
        const f = u.field && u.field.length > 0 ? fieldNames[u.field[u.field.length - 1]] : undefined;
        switch (u.code) {
          case 'NOT_FOUND':
            return `Could not ${what}: ${f ?? 'it'} no longer exists (${u.message}).`;
          case 'CONFLICT':
            return `Could not ${what}: ${u.message}.`;
          default:
            return `Could not ${what}: ${f ? `${f} ` : ''}${u.message.replace(/^[\w.]+: /, '')}.`;
        }
      })
      .join(' ');
  }
  if (e instanceof ApiError) {
    switch (e.code) {
      case 'NETWORK':
        return `Could not ${what}: the server cannot be reached. Check the connection and try again.`;
      case 'RATE_LIMITED':
        return `Could not ${what}: too many requests from this key just now.${e.retryAfter ? ` Try again in ${e.retryAfter} s.` : ' Try again in a moment.'}`;
      case 'FORBIDDEN':
        return `Could not ${what}: your key may not do this (${e.message}).`;
      case 'UNAUTHENTICATED':
        return `Could not ${what}: the server no longer accepts your key.`;
      case 'REQUEST_TOO_LARGE':
        return `Could not ${what}: it is larger than the server accepts.`;
      case 'TIMEOUT':
        return `Could not ${what}: the server took too long (${e.message}). Try again.`;
      case 'INTERNAL':
        return `Could not ${what}: the server failed (${e.message}). Try again; if it keeps failing, give the request id to support.`;
      default:
        return `Could not ${what}: ${e.message}`;
    }
  }
  return `Could not ${what}: ${e instanceof Error ? e.message : String(e)}`;
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
    profile { id name channels contacts { id name } }
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
  interactionUpdated(id: $id) { ...Row profile { id name channels contacts { id name } } }
}
${ROW}`;

export const S_LIST = `subscription InteractionsChanged($status: InteractionStatus) {
  interactionsChanged(status: $status) { kind interactionId interaction { ...Row } }
}
${ROW}`;

const USER_ERRORS = 'userErrors { field message code }';

export const M_REPLY = `mutation Reply($in: RecordMessageInput!) {
  recordMessage(input: $in) {
    interaction { ...Row }
    message { id direction body sentAt author }
    ${USER_ERRORS}
  }
}
${ROW}`;

export const M_CLOSE = `mutation Close($id: ID!, $state: ClosedState!) {
  closeInteraction(input: { id: $id, state: $state }) { interaction { ...Row } ${USER_ERRORS} }
}
${ROW}`;

export const M_REOPEN = `mutation Reopen($id: ID!) {
  reopenInteraction(input: { id: $id }) { interaction { ...Row } ${USER_ERRORS} }
}
${ROW}`;

const CONTACT = 'id channel address name';

export const Q_CUSTOMER = `query Customer($id: ID!) {
  interaction(id: $id) {
    id
    contact { ${CONTACT} attributes { key value } }
    profile {
      id name channels
      identifiers { key value }
      contacts { ${CONTACT} }
      links { contact { ${CONTACT} } reason key value source by linkedAt }
    }
  }
}`;

export interface ContactInfo {
  id: string;
  channel: Channel;
  address: string;
  name: string | null;
}

export interface ProfileLink {
  contact: ContactInfo;
  reason: 'RULE' | 'MANUAL';
  key: string | null;
  value: string | null;
  /** ATTESTED: the channel vouches for the value; CLAIMED: someone said so. */
  source: string | null;
  by: string | null;
  linkedAt: string;
}

export interface Customer {
  id: string;
  contact: ContactInfo & { attributes: { key: string; value: string }[] };
  profile: {
    id: string;
    name: string;
    channels: Channel[];
    identifiers: { key: string; value: string }[];
    contacts: ContactInfo[];
    links: ProfileLink[];
  } | null;
}

export interface ListChange {
  kind: 'ADDED' | 'UPDATED' | 'REMOVED';
  interactionId: string;
  interaction: Row;
}

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
