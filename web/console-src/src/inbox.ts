// The inbox (the tenant's open interactions, newest last message first) and
// how a change moves it, without I/O. Changes come from interactionsChanged
// and from this console's own writes (optimistic, before the server answers).
import type { ListChange, Row } from './api';

export interface InboxState {
  rows: Row[];
  /** The list's total on the server, as last counted or followed. */
  total: number;
  /** The cursor of the next page, null when the list is whole. */
  next: string | null;
}

const sentAt = (r: Row) => (r.lastMessage ? Date.parse(r.lastMessage.sentAt) : 0);

/** Where a row goes: newest last message first, after rows of the same time. */
function place(rows: Row[], row: Row): number {
  const t = sentAt(row);
  const i = rows.findIndex((r) => sentAt(r) < t);
  return i < 0 ? rows.length : i;
}

/** Whether a row of this filter's list belongs in it. */
export function matches(row: Row, status: 'OPEN' | 'CLOSED' | null): boolean {
  return status === null || row.status === status;
}

export interface Applied {
  state: InboxState;
  /**
   * The change may have altered the total in a way the loaded rows cannot
   * tell (a row outside the loaded pages): recount.
   */
  recount: boolean;
}

/**
 * Applies one change of the list filtered by status. The kind only says
 * what the server could tell; the row's status decides, so an optimistic
 * change (kind UPDATED with a closed row) and the live REMOVED that
 * confirms it leave the same list.
 */
export function applyListChange(s: InboxState, ch: ListChange, status: 'OPEN' | 'CLOSED' | null): Applied {
  const row = ch.interaction;
  const at = s.rows.findIndex((r) => r.id === ch.interactionId);
  const rest = at < 0 ? s.rows : [...s.rows.slice(0, at), ...s.rows.slice(at + 1)];
  if (ch.kind === 'REMOVED' || !matches(row, status)) {
    if (at < 0) return { state: s, recount: ch.kind === 'REMOVED' && s.next !== null };
    return { state: { ...s, rows: rest, total: Math.max(0, s.total - 1) }, recount: false };
  }
  const i = place(rest, row);
  // A row that sorts after the loaded pages is not shown yet: paging brings it.
  const beyond = i === rest.length && s.next !== null;
  if (at >= 0) {
    return { state: { ...s, rows: beyond ? rest : [...rest.slice(0, i), row, ...rest.slice(i)] }, recount: false };
  }
  const total = s.total + 1;
  if (beyond) return { state: { ...s, total }, recount: ch.kind !== 'ADDED' };
  return { state: { ...s, total, rows: [...rest.slice(0, i), row, ...rest.slice(i)] }, recount: false };
}
