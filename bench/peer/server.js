// The Node peer: the server a team would write instead of the gateway, to
// measure the gateway against (BENCHMARKS.md). Apollo Server 5 with
// DataLoader over better-sqlite3, reading the gateway's own related.db, on
// the gateway's own schema (schema.graphqls), resolving what
// operation.OpenInteraction asks: the interaction, its contact, queue, last
// message and profile bar, and the first page of its Related panel. It
// answers with the same `data` as the gateway (cmd/relatedload -check-peer
// compares them). No authentication: one tenant, given on the command line.
//
//   node server.js --db ../../data/related.db [--port 4000] [--tenant demo] [--schema ../../schema.graphqls]

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import Database from 'better-sqlite3';
import DataLoader from 'dataloader';
import { GraphQLError, GraphQLScalarType } from 'graphql';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    db: { type: 'string', default: join(here, '../../data/related.db') },
    port: { type: 'string', default: '4000' },
    host: { type: 'string', default: '127.0.0.1' },
    tenant: { type: 'string', default: 'demo' },
    schema: { type: 'string', default: join(here, '../../schema.graphqls') },
  },
});

const db = new Database(opts.db, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 10000');
const tenant = opts.tenant;

// Ids and times as the gateway writes them: global ids are base64url of
// "Type:id" without padding; times are RFC 3339 in UTC with the fraction's
// trailing zeros dropped (Go's time.RFC3339Nano).
const gid = (type, id) => Buffer.from(`${type}:${id}`).toString('base64url');
const time = (ms) => (ms ? new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z') : null);
const cursor = (ms, id) => Buffer.from(`c1:${ms}:${id}`).toString('base64url');

function decodeCursor(s) {
  const raw = Buffer.from(s, 'base64url').toString();
  const m = /^c1:(\d+):([0-9A-Za-z_-]+)$/.exec(raw);
  if (!m) throw new GraphQLError('malformed cursor', { extensions: { code: 'INVALID' } });
  return { at: Number(m[1]), id: m[2] };
}

// The Related panel's one-line preview of a body (related.Preview): white
// space folded, control characters dropped, at most 140 characters.
const isSpace = (c) =>
  (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0 || c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
const isControl = (c) => c < 0x20 || (c >= 0x7f && c <= 0x9f);
function preview(s, n = 140) {
  const out = [];
  let space = false;
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (isSpace(c)) { space = out.length > 0; continue; }
    if (c === 0xfffd || isControl(c)) continue;
    if (space) { out.push(' '); space = false; }
    out.push(ch);
    if (out.length > n) return out.slice(0, n - 1).join('') + '…';
  }
  return out.join('');
}

const byIds = (sql) => {
  const stmts = new Map();
  return (ids) => {
    let st = stmts.get(ids.length);
    if (!st) {
      st = db.prepare(sql.replace('(?)', `(${ids.map(() => '?').join(',')})`));
      stmts.set(ids.length, st);
    }
    const rows = st.all(tenant, ...ids);
    const map = new Map(rows.map((r) => [r.id, r]));
    return Promise.resolve(ids.map((id) => map.get(id) ?? null));
  };
};

const loadInteractions = byIds(`SELECT id, channel, contact_id, profile_id, queue_id, queue_name, status, closed_state, closed_at,
  last_id, last_body, last_partial, last_direction, last_author, last_at, created_at
  FROM interactions WHERE tenant = ? AND id IN (?)`);
const loadContacts = byIds('SELECT id, channel, address, name, profile_id FROM contacts WHERE tenant = ? AND id IN (?)');
const loadProfiles = byIds('SELECT id, custom_name, auto_name, channels, contacts, merged_into FROM profiles WHERE tenant = ? AND id IN (?)');
const loadMessages = byIds('SELECT id, direction, body, sent_at, author FROM messages WHERE tenant = ? AND id IN (?)');

const related = {
  channel: {
    count: db.prepare('SELECT count(*) AS n FROM interactions WHERE tenant = ? AND contact_id = ? AND id <> ?'),
    page: db.prepare(`SELECT id, channel, contact_id, queue_id, queue_name, status, closed_state, closed_at,
      last_id, last_body, last_partial, last_direction, last_author, last_at, created_at
      FROM interactions WHERE tenant = ? AND contact_id = ? AND id <> ? ORDER BY last_at DESC, id DESC LIMIT ?`),
    after: db.prepare(`SELECT id, channel, contact_id, queue_id, queue_name, status, closed_state, closed_at,
      last_id, last_body, last_partial, last_direction, last_author, last_at, created_at
      FROM interactions WHERE tenant = ? AND contact_id = ? AND id <> ? AND (last_at, id) < (?, ?) ORDER BY last_at DESC, id DESC LIMIT ?`),
  },
  profile: {
    count: db.prepare('SELECT count(*) AS n FROM interactions WHERE tenant = ? AND profile_id = ? AND id <> ?'),
    page: db.prepare(`SELECT id, channel, contact_id, queue_id, queue_name, status, closed_state, closed_at,
      last_id, last_body, last_partial, last_direction, last_author, last_at, created_at
      FROM interactions WHERE tenant = ? AND profile_id = ? AND id <> ? ORDER BY last_at DESC, id DESC LIMIT ?`),
    after: db.prepare(`SELECT id, channel, contact_id, queue_id, queue_name, status, closed_state, closed_at,
      last_id, last_body, last_partial, last_direction, last_author, last_at, created_at
      FROM interactions WHERE tenant = ? AND profile_id = ? AND id <> ? AND (last_at, id) < (?, ?) ORDER BY last_at DESC, id DESC LIMIT ?`),
  },
};

function fromGlobalId(id, type) {
  const raw = Buffer.from(id, 'base64url').toString();
  const i = raw.indexOf(':');
  if (i < 0 || raw.slice(0, i) !== type || !/^[0-9A-Za-z_-]{1,64}$/.test(raw.slice(i + 1))) return null;
  return raw.slice(i + 1);
}

async function profileOf(loaders, id) {
  for (let hops = 0; id && hops < 16; hops++) {
    const p = await loaders.profiles.load(id);
    if (!p || !p.merged_into) return p;
    id = p.merged_into;
  }
  return null;
}

const lastAt = (row) => (row.last_id ? row.last_at : row.created_at);

const resolvers = {
  Time: new GraphQLScalarType({ name: 'Time', serialize: (v) => v }),
  Query: {
    interaction: (_, { id }, { loaders }) => {
      const sid = fromGlobalId(id, 'Interaction');
      return sid ? loaders.interactions.load(sid) : null;
    },
  },
  Interaction: {
    id: (i) => gid('Interaction', i.id),
    closedState: (i) => (i.status === 'CLOSED' && i.closed_state ? i.closed_state : null),
    closedAt: (i) => (i.status === 'CLOSED' ? time(i.closed_at) : null),
    createdAt: (i) => time(i.created_at),
    contact: (i, _, { loaders }) => loaders.contacts.load(i.contact_id),
    queue: (i) => (i.queue_id ? { id: i.queue_id, name: i.queue_name } : null),
    lastMessage: async (i, _, { loaders }) => {
      if (!i.last_id) return null;
      if (i.last_partial) return loaders.messages.load(i.last_id); // the kept copy is only the start of a long body
      return { id: i.last_id, direction: i.last_direction, body: i.last_body, sent_at: i.last_at, author: i.last_author };
    },
    profile: (i, _, { loaders }) => profileOf(loaders, i.profile_id),
    related: async (i, args, { loaders }) => {
      const first = args.first ?? 20;
      if (first < 0 || first > 100) throw new GraphQLError('must be between 0 and 100', { extensions: { code: 'INVALID' } });
      let scope = 'CHANNEL';
      let key = i.contact_id;
      if (i.profile_id && args.scope !== 'CHANNEL') {
        const p = await profileOf(loaders, i.profile_id);
        if (p && p.contacts > 1) { scope = 'PROFILE'; key = p.id; }
      }
      const q = scope === 'PROFILE' ? related.profile : related.channel;
      let rows;
      if (args.after) {
        const c = decodeCursor(args.after);
        rows = q.after.all(tenant, key, i.id, c.at, c.id, first + 1);
      } else {
        rows = q.page.all(tenant, key, i.id, first + 1);
      }
      const more = rows.length > first;
      if (more) rows = rows.slice(0, first);
      const edges = rows.map((r) => ({ cursor: cursor(lastAt(r), r.id), node: r }));
      return {
        scope,
        totalCount: () => q.count.get(tenant, key, i.id).n,
        edges,
        pageInfo: {
          hasNextPage: more,
          hasPreviousPage: Boolean(args.after),
          startCursor: edges.length ? edges[0].cursor : null,
          endCursor: edges.length ? edges[edges.length - 1].cursor : null,
        },
      };
    },
  },
  Contact: {
    id: (c) => gid('Contact', c.id),
    name: (c) => c.name || null,
  },
  Queue: { id: (q) => gid('Queue', q.id) },
  Message: {
    id: (m) => gid('Message', m.id),
    sentAt: (m) => time(m.sent_at),
    author: (m) => m.author || null,
    preview: (m) => preview(m.body),
  },
  Profile: {
    id: (p) => gid('Profile', p.id),
    name: (p) => p.custom_name || p.auto_name,
    channels: (p) => JSON.parse(p.channels),
  },
};

const server = new ApolloServer({
  typeDefs: readFileSync(opts.schema, 'utf8'),
  resolvers,
});

const { url } = await startStandaloneServer(server, {
  listen: { port: Number(opts.port), host: opts.host },
  context: async () => ({
    loaders: {
      interactions: new DataLoader(loadInteractions),
      contacts: new DataLoader(loadContacts),
      profiles: new DataLoader(loadProfiles),
      messages: new DataLoader(loadMessages),
    },
  }),
});
console.log(`peer serving ${opts.db} (tenant ${tenant}) at ${url} pid ${process.pid}`);
