// What every part of the console shares: the key, the live connection, the
// clock, navigation, and the bus that carries this console's own writes
// (optimistic rows) to every view that shows the interaction.
import { createContext, Fragment } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Row, Viewer } from './api';
import { closedNames } from './format';
import type { Live } from './live';

export interface Ctx {
  apiKey: string;
  viewer: Viewer;
  live: Live;
  now: Date;
  open: (id: string | null) => void;
  /** Signs out when an API call says the key is no longer valid; true then. */
  refused: (e: unknown) => boolean;
  /** Announces a row as this console now believes it to be (an optimistic write, or the server's answer). */
  publishRow: (row: Row) => void;
  onRow: (fn: (row: Row) => void) => () => void;
  /** Says something to screen readers (and shows it briefly). */
  announce: (text: string) => void;
}

export const ConsoleCtx = createContext<Ctx>(null as unknown as Ctx);
export const useCtx = () => useContext(ConsoleCtx);

/** Whether the viewer's role may write (reply, close, reopen): partners read only. */
export const canWrite = (v: Viewer) => v.role === 'agent' || v.role === 'admin';

export const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function useNow(periodMs = 30_000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), periodMs);
    return () => clearInterval(t);
  }, [periodMs]);
  return now;
}

export const hrefFor = (id: string) => `/?interaction=${encodeURIComponent(id)}`;

/** Follows a link in the page unless the user asked for a new tab or window. */
export function linkHandler(open: (id: string) => void, id: string) {
  return (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    open(id);
  };
}

export function StateBadge({ row, pending }: { row: Pick<Row, 'status' | 'closedState'>; pending?: boolean }) {
  const busy = pending ? ' (saving…)' : '';
  if (row.status !== 'CLOSED') {
    return (
      <span class="state state-open" data-testid="state" data-state="OPEN">
        Open{busy}
      </span>
    );
  }
  const s = row.closedState ?? 'CLOSED';
  return (
    <span class={`state state-${s.toLowerCase()}`} data-testid="state" data-state={s}>
      {closedNames[s] ?? s}
      {busy}
    </span>
  );
}

/** True when the event comes from a place where keys type text. */
export function inTextField(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable) return true;
  if (t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return true;
  return t instanceof HTMLInputElement && !['button', 'checkbox', 'radio', 'submit', 'reset'].includes(t.type);
}

/**
 * Text that may wrap after the punctuation of addresses and identifiers
 * (@ . / _ -) when it has to, rather than at any letter.
 */
export function Breakable({ text }: { text: string }) {
  const parts = text.split(/(?<=[@./_-])/);
  return (
    <>
      {parts.map((p, i) => (
        <Fragment key={i}>
          {i > 0 && <wbr />}
          {p}
        </Fragment>
      ))}
    </>
  );
}
