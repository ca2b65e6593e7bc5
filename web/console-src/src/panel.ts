// The Related panel's state and how a live change updates it, without I/O.
import type { Connection, RelatedChange, Row, Scope } from './api';

export interface PanelState {
  /** The scope the server built the list with. */
  scope: Scope | null;
  totalCount: number;
  rows: Row[];
  hasNextPage: boolean;
  endCursor: string | null;
}

export function fromConnection(c: Connection<Row> & { scope: Scope | null }): PanelState {
  return {
    scope: c.scope,
    totalCount: c.totalCount,
    rows: dedupe(c.edges.map((e) => e.node)),
    hasNextPage: c.pageInfo.hasNextPage,
    endCursor: c.pageInfo.endCursor,
  };
}

/** Appends the next page, skipping rows a live change already brought in. */
export function appendPage(p: PanelState, c: Connection<Row>): PanelState {
  const have = new Set(p.rows.map((r) => r.id));
  return {
    ...p,
    totalCount: c.totalCount,
    rows: [...p.rows, ...c.edges.map((e) => e.node).filter((r) => !have.has(r.id))],
    hasNextPage: c.pageInfo.hasNextPage,
    endCursor: c.pageInfo.endCursor,
  };
}

function dedupe(rows: Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)));
}

const sentAt = (r: Row) => (r.lastMessage ? Date.parse(r.lastMessage.sentAt) : 0);

/** Where a row with this last-message time goes: newest first, after rows of the same time. */
function insertionIndex(rows: Row[], row: Row): number {
  const t = sentAt(row);
  const i = rows.findIndex((r) => sentAt(r) < t);
  return i < 0 ? rows.length : i;
}

/**
 * Applies one relatedChanged event. It returns null when the panel must be
 * reloaded instead: the change is about another scope than the one shown (the
 * subscription follows the default scope, which a merge or split can change,
 * while the agent may have picked the other one).
 */
export function applyChange(p: PanelState, ch: RelatedChange, self: string): PanelState | null {
  if (ch.scope !== p.scope) return null;
  if (ch.interactionId === self) return p;
  const at = p.rows.findIndex((r) => r.id === ch.interactionId);
  const rest = at < 0 ? p.rows : [...p.rows.slice(0, at), ...p.rows.slice(at + 1)];
  if (ch.kind === 'REMOVED') {
    return { ...p, rows: rest, totalCount: Math.max(0, p.totalCount - 1) };
  }
  const row = ch.interaction;
  if (!row) return null;
  const totalCount = ch.kind === 'ADDED' && at < 0 ? p.totalCount + 1 : p.totalCount;
  const i = insertionIndex(rest, row);
  // A row that sorts after the loaded page is not shown yet: paging brings it.
  if (i === rest.length && p.hasNextPage && at < 0) return { ...p, totalCount };
  return { ...p, totalCount, rows: [...rest.slice(0, i), row, ...rest.slice(i)] };
}
