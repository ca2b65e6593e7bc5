// The sidebar: the inbox (the tenant's open interactions, live) and the
// search by identifier. j/k or the arrow keys move through it, Enter opens.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  explain,
  gql,
  Q_FIND,
  Q_RECENT,
  Q_RULES,
  S_LIST,
  type Connection,
  type ListChange,
  type Profile,
  type Row,
} from './api';
import { fullWhen, shortWhen } from './format';
import { Breakable, hrefFor, inTextField, linkHandler, StateBadge, useCtx } from './ctx';
import { ChannelIcon } from './icons';
import { applyListChange, type InboxState } from './inbox';

interface FoundProfile extends Profile {
  interactions: Connection<Row>;
}

const Q_COUNT = `query Count { interactions(first: 1, status: OPEN) { totalCount } }`;

export function Sidebar({ selected, visible }: { selected: string | null; visible: boolean }) {
  const { apiKey, live, refused, onRow } = useCtx();
  const [inbox, setInbox] = useState<InboxState | null>(null);
  const [inboxError, setInboxError] = useState<string | null>(null);
  const [liveNote, setLiveNote] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [idKeys, setIdKeys] = useState<string[]>(['email']);
  const [idKey, setIdKey] = useState('email');
  const [value, setValue] = useState('');
  const [search, setSearch] = useState<{ key: string; value: string; profile: FoundProfile | null } | null>(null);
  const [searching, setSearching] = useState(false);
  const [searchError, setSearchError] = useState<string | null>(null);
  const inboxRef = useRef<InboxState | null>(null);
  inboxRef.current = inbox;
  const seq = useRef(0);
  const listRef = useRef<HTMLElement>(null);

  /** Loads the first page again (after, to append the next one). */
  const load = useCallback(
    async (after: string | null) => {
      const n = after ? seq.current : ++seq.current;
      try {
        const d = await gql<{ interactions: Connection<Row> }>(apiKey, Q_RECENT, { after });
        if (n !== seq.current) return;
        const c = d.interactions;
        setInbox((prev) => {
          const base = after && prev ? prev.rows : [];
          const have = new Set(base.map((r) => r.id));
          return {
            rows: [...base, ...c.edges.map((e) => e.node).filter((r) => !have.has(r.id))],
            total: c.totalCount,
            next: c.pageInfo.hasNextPage ? c.pageInfo.endCursor : null,
          };
        });
        setInboxError(null);
      } catch (e) {
        if (n === seq.current && !refused(e)) setInboxError(explain(e, 'load the inbox'));
      }
    },
    [apiKey, refused],
  );

  // A change that the loaded rows cannot account for: count again, once
  // things settle.
  const recountTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const recount = useCallback(() => {
    if (recountTimer.current) clearTimeout(recountTimer.current);
    recountTimer.current = setTimeout(async () => {
      recountTimer.current = null;
      try {
        const d = await gql<{ interactions: { totalCount: number } }>(apiKey, Q_COUNT);
        setInbox((s) => (s ? { ...s, total: d.interactions.totalCount } : s));
      } catch {
        /* the next change or reload counts again */
      }
    }, 800);
  }, [apiKey]);
  useEffect(() => () => void (recountTimer.current && clearTimeout(recountTimer.current)), []);

  const apply = useCallback(
    (ch: ListChange) => {
      const s = inboxRef.current;
      if (!s) return;
      const { state, recount: again } = applyListChange(s, ch, 'OPEN');
      inboxRef.current = state;
      setInbox(state);
      if (again) recount();
    },
    [recount],
  );

  useEffect(() => {
    load(null);
    gql<{ profileRules: { attribute: string; enabled: boolean }[] }>(apiKey, Q_RULES)
      .then((d) => {
        const keys = [...new Set(d.profileRules.filter((r) => r.enabled).map((r) => r.attribute))];
        if (keys.length > 0) {
          setIdKeys(keys);
          setIdKey((k) => (keys.includes(k) ? k : keys[0]));
        }
      })
      .catch(() => {
        /* keep the default key */
      });
  }, [apiKey, load]);

  // The inbox, live: interactions open, move and close as they happen.
  useEffect(() => {
    const stop = live.subscribe<{ interactionsChanged: ListChange }>(
      S_LIST,
      { status: 'OPEN' },
      {
        next: (d) => {
          const ch = d.interactionsChanged;
          setLiveNote(null);
          apply(ch);
          if (ch.kind !== 'REMOVED') {
            setFresh((f) => new Set(f).add(ch.interactionId));
            setTimeout(
              () =>
                setFresh((f) => {
                  const n = new Set(f);
                  n.delete(ch.interactionId);
                  return n;
                }),
              2500,
            );
          }
        },
        error: (m, retrying) => setLiveNote(retrying ? `Live updates paused (${m}); resuming…` : `Live updates stopped: ${m}`),
        resync: () => {
          setLiveNote(null);
          load(null);
        },
      },
    );
    const off = live.onReconnect(() => load(null));
    return () => {
      stop();
      off();
    };
  }, [live, load, apply]);

  // This console's own writes, before (and after) the server confirms them.
  useEffect(
    () => onRow((row) => apply({ kind: 'UPDATED', interactionId: row.id, interaction: row })),
    [onRow, apply],
  );

  // j/k (or the arrow keys inside the list) move through the items, Enter
  // opens the focused one (it is a link).
  useEffect(() => {
    if (!visible) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || inTextField(e.target)) return;
      const list = listRef.current;
      if (!list) return;
      const inList = list.contains(document.activeElement);
      let step = 0;
      if (e.key === 'j' || (inList && e.key === 'ArrowDown')) step = 1;
      else if (e.key === 'k' || (inList && e.key === 'ArrowUp')) step = -1;
      else return;
      const items = [...list.querySelectorAll<HTMLAnchorElement>('a.item')];
      if (items.length === 0) return;
      e.preventDefault();
      let at = items.findIndex((a) => a === document.activeElement);
      if (at < 0) at = items.findIndex((a) => a.getAttribute('aria-current') === 'page');
      const next = at < 0 ? (step > 0 ? 0 : items.length - 1) : Math.min(items.length - 1, Math.max(0, at + step));
      items[next].focus();
      items[next].scrollIntoView({ block: 'nearest' });
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [visible]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const v = value.trim();
    if (!v) return;
    setSearching(true);
    setSearchError(null);
    try {
      const d = await gql<{ profileByIdentifier: FoundProfile | null }>(apiKey, Q_FIND, { key: idKey, value: v });
      setSearch({ key: idKey, value: v, profile: d.profileByIdentifier });
    } catch (err) {
      if (!refused(err)) setSearchError(explain(err, 'search'));
    } finally {
      setSearching(false);
    }
  };

  return (
    <nav class="side" aria-label="Interactions" ref={listRef} hidden={!visible}>
      <form class="search" role="search" onSubmit={submit} data-testid="search">
        <label class="search-label" for="search-value">
          Find a customer by identifier
        </label>
        <input
          id="search-value"
          type="search"
          placeholder={idKey === 'email' ? 'ann@example.com' : 'value'}
          value={value}
          aria-keyshortcuts="/"
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <div class="search-row">
          <select aria-label="Identifier" value={idKey} onChange={(e) => setIdKey((e.target as HTMLSelectElement).value)}>
            {idKeys.map((k) => (
              <option value={k} key={k}>
                {k}
              </option>
            ))}
          </select>
          <button type="submit" class="btn" disabled={searching}>
            {searching ? 'Searching…' : 'Search'}
          </button>
        </div>
        {searchError && (
          <p class="error" role="alert">
            {searchError}
          </p>
        )}
      </form>

      {search ? (
        <section class="list-section" aria-labelledby="found-title" data-testid="search-result">
          <div class="list-head">
            <h2 id="found-title">
              {search.profile ? (
                <>
                  Profile <span class="found-name">{search.profile.name}</span>
                </>
              ) : (
                'No match'
              )}
            </h2>
            <button type="button" class="btn small" onClick={() => (setSearch(null), setValue(''))}>
              Clear
            </button>
          </div>
          {search.profile ? (
            <>
              <p class="list-sub">
                {search.profile.channels.map((c) => (
                  <ChannelIcon channel={c} size="sm" key={c} />
                ))}{' '}
                {search.profile.interactions.totalCount} interaction{search.profile.interactions.totalCount === 1 ? '' : 's'}
              </p>
              <InteractionList rows={search.profile.interactions.edges.map((e) => e.node)} selected={selected} fresh={fresh} />
            </>
          ) : (
            <p class="empty">
              No profile holds {search.key} “{search.value}”.
            </p>
          )}
        </section>
      ) : (
        <section class="list-section" aria-labelledby="recent-title" data-testid="recent">
          <div class="list-head">
            <h2 id="recent-title">
              Inbox{' '}
              {inbox && (
                <span class="count" data-testid="inbox-count" title={`${inbox.total} open interactions`}>
                  {inbox.total}
                </span>
              )}
            </h2>
            <button type="button" class="btn small" onClick={() => load(null)} aria-label="Reload the inbox">
              Reload
            </button>
          </div>
          {liveNote && (
            <p class="notice warn" role="status">
              {liveNote}
            </p>
          )}
          {inboxError && (
            <p class="error" role="alert">
              {inboxError}
            </p>
          )}
          {!inbox && !inboxError && <p class="empty">Loading…</p>}
          {inbox && inbox.rows.length === 0 && <p class="empty">No open interactions.</p>}
          {inbox && <InteractionList rows={inbox.rows} selected={selected} fresh={fresh} />}
          {inbox?.next && (
            <button
              type="button"
              class="btn more"
              disabled={loadingMore}
              onClick={async () => {
                setLoadingMore(true);
                await load(inbox.next);
                setLoadingMore(false);
              }}
            >
              {loadingMore ? 'Loading…' : `More (${Math.max(0, inbox.total - inbox.rows.length)} more)`}
            </button>
          )}
        </section>
      )}
    </nav>
  );
}

function InteractionList({ rows, selected, fresh }: { rows: Row[]; selected: string | null; fresh: Set<string> }) {
  const { open, now } = useCtx();
  return (
    <ul class="items">
      {rows.map((r) => (
        <li key={r.id}>
          <a
            class={`item${r.status === 'CLOSED' ? ' closed' : ''}${fresh.has(r.id) ? ' fresh' : ''}`}
            href={hrefFor(r.id)}
            aria-current={selected === r.id ? 'page' : undefined}
            onClick={linkHandler(open, r.id)}
            data-id={r.id}
            data-status={r.status}
          >
            <ChannelIcon channel={r.channel} />
            <span class="item-main">
              <span class="item-top">
                <span class="item-name">
                  <Breakable text={r.contact.name || r.contact.address} />
                </span>
                {r.lastMessage && (
                  <time dateTime={r.lastMessage.sentAt} title={fullWhen(r.lastMessage.sentAt)}>
                    {shortWhen(r.lastMessage.sentAt, now)}
                  </time>
                )}
              </span>
              <span class="item-preview">{r.lastMessage?.preview ?? 'No messages'}</span>
              <span class="item-bottom">
                <span class="queue">{r.queue?.name ?? 'No queue'}</span>
                <StateBadge row={r} />
              </span>
            </span>
          </a>
        </li>
      ))}
    </ul>
  );
}
