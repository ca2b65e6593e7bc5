// The agent console: sign-in, the interaction list and search, the
// conversation with its profile bar, and the Related panel.
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  gql,
  M_PREFS,
  Q_EARLIER,
  Q_FIND,
  Q_INTERACTION,
  Q_RECENT,
  Q_RELATED,
  Q_RULES,
  Q_VIEWER,
  S_INTERACTION,
  S_RELATED,
  type Connection,
  type Interaction,
  type Message,
  type Profile,
  type RelatedChange,
  type Row,
  type Scope,
  type Viewer,
} from './api';
import { channelNames, closedNames, fullWhen, messageWhen, shortWhen } from './format';
import { ChannelIcon } from './icons';
import { connectLive, type Live, type LiveState } from './live';
import { appendPage, applyChange, fromConnection, type PanelState } from './panel';

const KEY_STORAGE = 'related.console.apiKey';

function readKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

function writeKey(key: string | null) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lasts for this page only */
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

// --- Shared context -------------------------------------------------------

interface Ctx {
  apiKey: string;
  live: Live;
  now: Date;
  open: (id: string | null) => void;
  /** Called when an API call says the key is no longer valid. */
  refused: (e: unknown) => boolean;
}

const ConsoleCtx = createContext<Ctx>(null as unknown as Ctx);
const useCtx = () => useContext(ConsoleCtx);

function useNow(periodMs = 30_000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), periodMs);
    return () => clearInterval(t);
  }, [periodMs]);
  return now;
}

function idFromURL(): string | null {
  return new URLSearchParams(window.location.search).get('interaction');
}

const hrefFor = (id: string) => `/?interaction=${encodeURIComponent(id)}`;

/** Follows a link in the page unless the user asked for a new tab or window. */
function linkHandler(open: (id: string) => void, id: string) {
  return (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    open(id);
  };
}

// --- App and sign-in ------------------------------------------------------

export function App() {
  const [apiKey, setApiKey] = useState<string | null>(readKey);
  const [viewer, setViewer] = useState<Viewer | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [bootError, setBootError] = useState<string | null>(null);

  const signOut = useCallback((why: string | null) => {
    writeKey(null);
    setApiKey(null);
    setViewer(null);
    setNotice(why);
  }, []);

  useEffect(() => {
    if (!apiKey || viewer) return;
    let stop = false;
    gql<{ viewer: Viewer }>(apiKey, Q_VIEWER)
      .then((d) => !stop && setViewer(d.viewer))
      .catch((e) => {
        if (stop) return;
        if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') signOut('The saved key was refused (revoked?). Sign in with another one.');
        else setBootError(message(e));
      });
    return () => {
      stop = true;
    };
  }, [apiKey, viewer, signOut]);

  if (!apiKey) {
    return (
      <SignIn
        notice={notice}
        onSignIn={(key, v) => {
          writeKey(key);
          setNotice(null);
          setViewer(v);
          setApiKey(key);
        }}
      />
    );
  }
  if (!viewer) {
    return (
      <div class="boot" role="status">
        {bootError ? (
          <>
            <p>Cannot reach the server: {bootError}</p>
            <button type="button" class="btn" onClick={() => (setBootError(null), setViewer(null), setApiKey(readKey()))}>
              Try again
            </button>{' '}
            <button type="button" class="btn" onClick={() => signOut(null)}>
              Sign out
            </button>
          </>
        ) : (
          <p>Signing in…</p>
        )}
      </div>
    );
  }
  return <Console apiKey={apiKey} viewer={viewer} onSignOut={signOut} />;
}

function SignIn({ notice, onSignIn }: { notice: string | null; onSignIn: (key: string, v: Viewer) => void }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const k = key.trim().replace(/^Bearer\s+/i, '');
    if (!k) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const d = await gql<{ viewer: Viewer }>(k, Q_VIEWER);
      onSignIn(k, d.viewer);
    } catch (err) {
      setError(err instanceof ApiError && err.code === 'UNAUTHENTICATED' ? 'The server does not know this key, or it was revoked.' : message(err));
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="signin-card" onSubmit={submit} aria-labelledby="signin-title" data-testid="signin">
        <h1 id="signin-title">Related · Agent console</h1>
        <p>Sign in with an API key. The console keeps it in this browser (local storage) and sends it with every request.</p>
        {notice && (
          <p class="notice warn" role="alert">
            {notice}
          </p>
        )}
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="rk_…"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'api-key-error key-help' : 'key-help'}
        />
        {error && (
          <p id="api-key-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <div id="key-help" class="help">
          <p>Where keys come from:</p>
          <ul>
            <li>
              On its first start with the embedded database, <code>relatedd serve</code> prints an admin key for the tenant{' '}
              <code>demo</code>.
            </li>
            <li>
              An operator makes one per agent: <code>relatedd keys create --tenant demo --role agent --name Ann</code>.
            </li>
          </ul>
          <p>Your preferences (such as whether the Related panel is shown) are stored on the server with your key.</p>
        </div>
      </form>
    </main>
  );
}

// --- The console ----------------------------------------------------------

const liveLabels: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  refused: 'Live updates refused',
};

function useLiveState(live: Live): LiveState {
  const [s, setS] = useState<LiveState>(live.state());
  useEffect(() => {
    setS(live.state());
    return live.onState(setS);
  }, [live]);
  return s;
}

function Console({ apiKey, viewer, onSignOut }: { apiKey: string; viewer: Viewer; onSignOut: (why: string | null) => void }) {
  const live = useMemo(() => connectLive(apiKey), [apiKey]);
  useEffect(() => () => live.dispose(), [live]);
  const liveState = useLiveState(live);
  const now = useNow();
  const [showRelated, setShowRelated] = useState(viewer.preferences.showRelated);
  const [prefError, setPrefError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(idFromURL);
  // Bumped when the Related panel's scope changes live (a profile merge or
  // split), so the profile bar reloads too.
  const [profileEpoch, setProfileEpoch] = useState(0);
  const profileChanged = useCallback(() => setProfileEpoch((n) => n + 1), []);

  useEffect(() => {
    const f = () => setSelected(idFromURL());
    window.addEventListener('popstate', f);
    return () => window.removeEventListener('popstate', f);
  }, []);

  const open = useCallback((id: string | null) => {
    const url = id ? hrefFor(id) : '/';
    if (window.location.pathname + window.location.search !== url) history.pushState(null, '', url);
    setSelected(id);
    window.scrollTo(0, 0);
  }, []);

  const refused = useCallback(
    (e: unknown) => {
      if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') {
        onSignOut('The server no longer accepts your key (revoked?). Sign in again.');
        return true;
      }
      return false;
    },
    [onSignOut],
  );

  const toggleRelated = async () => {
    const next = !showRelated;
    setShowRelated(next);
    setPrefError(null);
    try {
      const d = await gql<{ setPreferences: { preferences: { showRelated: boolean } | null; userErrors: { message: string }[] } }>(
        apiKey,
        M_PREFS,
        { showRelated: next },
      );
      const p = d.setPreferences;
      if (p.userErrors.length > 0 || !p.preferences) throw new Error(p.userErrors[0]?.message ?? 'not saved');
      setShowRelated(p.preferences.showRelated);
    } catch (e) {
      if (refused(e)) return;
      setShowRelated(!next);
      setPrefError(`Could not save the choice: ${message(e)}`);
    }
  };

  const ctx = useMemo<Ctx>(() => ({ apiKey, live, now, open, refused }), [apiKey, live, now, open, refused]);

  return (
    <ConsoleCtx.Provider value={ctx}>
      <div class={`app${selected ? ' has-selection' : ''}${showRelated ? ' with-related' : ''}`}>
        <header class="top">
          <a class="brand" href="/" onClick={(e) => (e.preventDefault(), open(null))}>
            <span class="brand-mark" aria-hidden="true">R</span>
            <span class="brand-name">Related</span>
          </a>
          <span class={`live live-${liveState}`} role="status" aria-live="polite" data-testid="live-state" data-state={liveState}>
            <span class="dot" aria-hidden="true" />
            {liveLabels[liveState]}
          </span>
          <span class="spacer" />
          <span class="who" title={`${viewer.role} key of tenant ${viewer.tenant}`}>
            {viewer.name || viewer.role} <span class="who-tenant">· {viewer.tenant}</span>
          </span>
          <a class="link-quiet" href="/graphiql">
            GraphiQL
          </a>
          <button type="button" class="btn small" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </header>
        {liveState === 'reconnecting' && (
          <p class="banner warn" data-testid="reconnecting">
            The live connection dropped. Reconnecting… (what is shown may be out of date)
          </p>
        )}
        {prefError && (
          <p class="banner error" role="alert">
            {prefError}
          </p>
        )}
        <div class="layout">
          <Sidebar selected={selected} />
          {selected ? (
            <InteractionView
              key={selected}
              id={selected}
              showRelated={showRelated}
              onToggleRelated={toggleRelated}
              profileEpoch={profileEpoch}
            />
          ) : (
            <main class="conv empty-state">
              <h1>Pick an interaction</h1>
              <p>Open one of the recent open interactions, or search for a customer by an identifier such as an email address.</p>
            </main>
          )}
          {selected && showRelated && <RelatedPanel key={selected} id={selected} liveState={liveState} onScopeChanged={profileChanged} />}
        </div>
      </div>
    </ConsoleCtx.Provider>
  );
}

// --- Sidebar: recent open interactions and search -------------------------

interface FoundProfile extends Profile {
  interactions: Connection<Row>;
}

function Sidebar({ selected }: { selected: string | null }) {
  const { apiKey, refused } = useCtx();
  const [recent, setRecent] = useState<{ rows: Row[]; total: number; next: string | null } | null>(null);
  const [recentError, setRecentError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [idKeys, setIdKeys] = useState<string[]>(['email']);
  const [idKey, setIdKey] = useState('email');
  const [value, setValue] = useState('');
  const [search, setSearch] = useState<{ key: string; value: string; profile: FoundProfile | null } | null>(null);
  const [searching, setSearching] = useState(false);
  const [searchError, setSearchError] = useState<string | null>(null);

  const loadRecent = useCallback(
    async (after: string | null) => {
      setRecentError(null);
      try {
        const d = await gql<{ interactions: Connection<Row> }>(apiKey, Q_RECENT, { after });
        const c = d.interactions;
        setRecent((prev) => {
          const base = after && prev ? prev.rows : [];
          const have = new Set(base.map((r) => r.id));
          return {
            rows: [...base, ...c.edges.map((e) => e.node).filter((r) => !have.has(r.id))],
            total: c.totalCount,
            next: c.pageInfo.hasNextPage ? c.pageInfo.endCursor : null,
          };
        });
      } catch (e) {
        if (!refused(e)) setRecentError(message(e));
      }
    },
    [apiKey, refused],
  );

  useEffect(() => {
    loadRecent(null);
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
  }, [apiKey, loadRecent]);

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
      if (!refused(err)) setSearchError(message(err));
    } finally {
      setSearching(false);
    }
  };

  return (
    <nav class="side" aria-label="Interactions">
      <form class="search" role="search" onSubmit={submit} data-testid="search">
        <label class="search-label" for="search-value">
          Find a customer by identifier
        </label>
        <div class="search-row">
          <select aria-label="Identifier" value={idKey} onChange={(e) => setIdKey((e.target as HTMLSelectElement).value)}>
            {idKeys.map((k) => (
              <option value={k} key={k}>
                {k}
              </option>
            ))}
          </select>
          <input
            id="search-value"
            type="search"
            placeholder={idKey === 'email' ? 'ann@example.com' : 'value'}
            value={value}
            onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          />
          <button type="submit" class="btn" disabled={searching}>
            Search
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
              <InteractionList rows={search.profile.interactions.edges.map((e) => e.node)} selected={selected} />
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
              Open interactions {recent && <span class="count">{recent.total}</span>}
            </h2>
            <button type="button" class="btn small" onClick={() => loadRecent(null)} aria-label="Refresh the list">
              Refresh
            </button>
          </div>
          {recentError && (
            <p class="error" role="alert">
              {recentError}
            </p>
          )}
          {!recent && !recentError && <p class="empty">Loading…</p>}
          {recent && recent.rows.length === 0 && <p class="empty">No open interactions.</p>}
          {recent && <InteractionList rows={recent.rows} selected={selected} />}
          {recent?.next && (
            <button
              type="button"
              class="btn more"
              disabled={loadingMore}
              onClick={async () => {
                setLoadingMore(true);
                await loadRecent(recent.next);
                setLoadingMore(false);
              }}
            >
              {loadingMore ? 'Loading…' : 'More'}
            </button>
          )}
        </section>
      )}
    </nav>
  );
}

function InteractionList({ rows, selected }: { rows: Row[]; selected: string | null }) {
  const { open, now } = useCtx();
  return (
    <ul class="items">
      {rows.map((r) => (
        <li key={r.id}>
          <a
            class={`item${r.status === 'CLOSED' ? ' closed' : ''}`}
            href={hrefFor(r.id)}
            aria-current={selected === r.id ? 'page' : undefined}
            onClick={linkHandler(open, r.id)}
            data-id={r.id}
          >
            <ChannelIcon channel={r.channel} />
            <span class="item-main">
              <span class="item-top">
                <span class="item-name">{r.contact.name || r.contact.address}</span>
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

function StateBadge({ row }: { row: Pick<Row, 'status' | 'closedState'> }) {
  if (row.status !== 'CLOSED') return <span class="state state-open">Open</span>;
  const s = row.closedState ?? 'CLOSED';
  return <span class={`state state-${s.toLowerCase()}`}>{closedNames[s] ?? s}</span>;
}

// --- The interaction: profile bar, header, conversation --------------------

function mergeMessages(a: Message[], b: Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) byId.set(m.id, m);
  return [...byId.values()].sort((x, y) => Date.parse(x.sentAt) - Date.parse(y.sentAt));
}

function InteractionView({
  id,
  showRelated,
  onToggleRelated,
  profileEpoch,
}: {
  id: string;
  showRelated: boolean;
  onToggleRelated: () => void;
  profileEpoch: number;
}) {
  const { apiKey, live, now, open, refused } = useCtx();
  const [it, setIt] = useState<Interaction | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [earlier, setEarlier] = useState<string | null>(null); // cursor, when there are earlier messages
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const keepFromBottom = useRef<number | null>(null); // distance from the bottom to restore after a render
  const stick = useRef(true); // scroll to the bottom after the next render
  const loadedOnce = useRef(false);
  const messagesRef = useRef<Message[]>([]);
  messagesRef.current = messages;

  const load = useCallback(async () => {
    try {
      const d = await gql<{ interaction: Interaction | null }>(apiKey, Q_INTERACTION, { id });
      if (!d.interaction) {
        setMissing(true);
        return;
      }
      const el = scroller.current;
      stick.current = !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      setIt(d.interaction);
      setMessages((prev) => mergeMessages(prev, d.interaction!.messages.edges.map((e) => e.node)));
      if (!loadedOnce.current) {
        // Later reloads fetch the newest messages only: the upward paging
        // position stays where the agent left it.
        loadedOnce.current = true;
        const pi = d.interaction.messages.pageInfo;
        setEarlier(pi.hasPreviousPage ? pi.startCursor : null);
      }
      setError(null);
    } catch (e) {
      if (!refused(e)) setError(message(e));
    }
  }, [apiKey, id, refused]);

  useEffect(() => {
    load();
  }, [load, profileEpoch]);

  // The interaction itself, live: status, queue, new messages.
  useEffect(() => {
    const stop = live.subscribe<{ interactionUpdated: Row & { profile: Profile | null } }>(
      S_INTERACTION,
      { id },
      (d) => {
        const u = d.interactionUpdated;
        setIt((prev) => (prev ? { ...prev, ...u } : prev));
        const last = u.lastMessage;
        if (last && !messagesRef.current.some((m) => m.id === last.id)) load();
      },
      () => {
        /* the page still works without it */
      },
    );
    const off = live.onReconnect(() => load());
    return () => {
      stop();
      off();
    };
  }, [live, id, load]);

  const loadEarlier = async () => {
    if (!earlier) return;
    setLoadingEarlier(true);
    try {
      const d = await gql<{ interaction: { messages: Connection<Message> } | null }>(apiKey, Q_EARLIER, { id, before: earlier });
      const c = d.interaction?.messages;
      if (c) {
        const el = scroller.current;
        keepFromBottom.current = el ? el.scrollHeight - el.scrollTop : null;
        setMessages((prev) => mergeMessages(c.edges.map((e) => e.node), prev));
        setEarlier(c.pageInfo.hasPreviousPage ? c.pageInfo.startCursor : null);
      }
    } catch (e) {
      if (!refused(e)) setError(message(e));
    } finally {
      setLoadingEarlier(false);
    }
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (keepFromBottom.current !== null) {
      el.scrollTop = el.scrollHeight - keepFromBottom.current;
      keepFromBottom.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
      stick.current = false;
    }
  }, [messages]);

  if (missing) {
    return (
      <main class="conv empty-state">
        <h1>Interaction not found</h1>
        <p>It does not exist, or belongs to another tenant.</p>
        <button type="button" class="btn" onClick={() => open(null)}>
          Back to the list
        </button>
      </main>
    );
  }
  if (!it) {
    return (
      <main class="conv empty-state" aria-busy="true">
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  }
  const name = it.contact.name || it.contact.address;
  return (
    <main class="conv" aria-labelledby="conv-title" data-testid="interaction" data-id={it.id}>
      <button type="button" class="btn small back" onClick={() => open(null)}>
        ← All interactions
      </button>
      {it.profile && (
        <div class="profile-bar" data-testid="profile-bar" role="group" aria-label="Customer profile">
          <span class="profile-label">Profile</span>
          <strong class="profile-name">{it.profile.name}</strong>
          <span class="profile-channels" aria-label="Channels">
            {it.profile.channels.map((c) => (
              <ChannelIcon channel={c} size="sm" key={c} />
            ))}
          </span>
        </div>
      )}
      <div class="conv-head">
        <ChannelIcon channel={it.channel} />
        <div class="conv-title">
          <h1 id="conv-title">{name}</h1>
          <p class="conv-meta">
            <span>{channelNames[it.channel]}</span>
            {it.contact.name && <span class="addr">{it.contact.address}</span>}
            <span>{it.queue ? `Queue: ${it.queue.name}` : 'No queue'}</span>
            <StateBadge row={it} />
          </p>
        </div>
        <button
          type="button"
          class="btn toggle"
          aria-pressed={showRelated}
          onClick={onToggleRelated}
          data-testid="toggle-related"
          title="Show or hide the Related panel for every interaction (saved with your key)"
        >
          <span class="toggle-box" aria-hidden="true" />
          Related panel
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="messages" ref={scroller} tabIndex={0} aria-label="Conversation" data-testid="messages">
        {earlier ? (
          <button type="button" class="btn small earlier" onClick={loadEarlier} disabled={loadingEarlier}>
            {loadingEarlier ? 'Loading…' : 'Load earlier messages'}
          </button>
        ) : (
          <p class="conv-start">
            Start of the conversation · {it.messages.totalCount} message{it.messages.totalCount === 1 ? '' : 's'}
          </p>
        )}
        <ol class="msgs">
          {messages.map((m) => (
            <li key={m.id} class={`msg ${m.direction === 'INBOUND' ? 'in' : 'out'}`} data-id={m.id}>
              <div class="bubble">{m.body}</div>
              <div class="msg-meta">
                {m.author || (m.direction === 'INBOUND' ? name : 'Agent')} ·{' '}
                <time dateTime={m.sentAt} title={fullWhen(m.sentAt)}>
                  {messageWhen(m.sentAt, now)}
                </time>
              </div>
            </li>
          ))}
        </ol>
      </div>
    </main>
  );
}

// --- The Related panel ----------------------------------------------------

function RelatedPanel({ id, liveState, onScopeChanged }: { id: string; liveState: LiveState; onScopeChanged: () => void }) {
  const { apiKey, live, now, open, refused } = useCtx();
  const [requested, setRequested] = useState<Scope | null>(null);
  const [panel, setPanel] = useState<PanelState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [liveError, setLiveError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [hasProfile, setHasProfile] = useState(false);
  const requestedRef = useRef<Scope | null>(null);
  requestedRef.current = requested;
  const panelRef = useRef<PanelState | null>(null);
  panelRef.current = panel;
  const seq = useRef(0);

  const reload = useCallback(async () => {
    const n = ++seq.current;
    try {
      const d = await gql<{ interaction: { profile: { id: string } | null; related: Connection<Row> & { scope: Scope | null } } | null }>(
        apiKey,
        Q_RELATED,
        { id, scope: requestedRef.current },
      );
      if (n !== seq.current) return;
      if (!d.interaction) return;
      setHasProfile(d.interaction.profile !== null);
      setPanel(fromConnection(d.interaction.related));
      setError(null);
    } catch (e) {
      if (n === seq.current && !refused(e)) setError(message(e));
    }
  }, [apiKey, id, refused]);

  useEffect(() => {
    reload();
  }, [reload, requested]);

  const reloadSoon = useRef<ReturnType<typeof setTimeout> | null>(null);
  const scheduleReload = useCallback(() => {
    if (reloadSoon.current) clearTimeout(reloadSoon.current);
    reloadSoon.current = setTimeout(() => {
      reloadSoon.current = null;
      reload();
    }, 150);
  }, [reload]);
  useEffect(() => () => void (reloadSoon.current && clearTimeout(reloadSoon.current)), []);

  useEffect(() => {
    const stop = live.subscribe<{ relatedChanged: RelatedChange }>(
      S_RELATED,
      { id },
      (d) => {
        const ch = d.relatedChanged;
        setLiveError(null);
        const p = panelRef.current;
        if (p) {
          const next = applyChange(p, ch, id);
          if (next === null) {
            if (ch.scope !== p.scope) onScopeChanged();
            scheduleReload();
          } else {
            panelRef.current = next;
            setPanel(next);
          }
        }
        if (ch.kind !== 'REMOVED') {
          setFresh((s) => new Set(s).add(ch.interactionId));
          setTimeout(
            () =>
              setFresh((s) => {
                const n = new Set(s);
                n.delete(ch.interactionId);
                return n;
              }),
            2500,
          );
        }
      },
      (m) => setLiveError(m),
    );
    const off = live.onReconnect(() => reload());
    return () => {
      stop();
      off();
    };
  }, [live, id, reload, scheduleReload, onScopeChanged]);

  const more = async () => {
    if (!panel?.endCursor) return;
    setLoadingMore(true);
    try {
      const d = await gql<{ interaction: { related: Connection<Row> } | null }>(apiKey, Q_RELATED, {
        id,
        scope: panel.scope,
        after: panel.endCursor,
      });
      if (d.interaction) setPanel((p) => (p ? appendPage(p, d.interaction!.related) : p));
    } catch (e) {
      if (!refused(e)) setError(message(e));
    } finally {
      setLoadingMore(false);
    }
  };

  const scope = panel?.scope ?? requested;
  const pick = (s: Scope) => {
    if (s === scope) return;
    setPanel(null);
    setRequested(s);
  };

  return (
    <aside
      class="related"
      aria-labelledby="related-title"
      data-testid="related-panel"
      data-scope={panel?.scope ?? ''}
      data-requested={requested ?? ''}
    >
      <div class="related-head">
        <h2 id="related-title">
          Related{' '}
          {panel && (
            <span class="count" data-testid="related-count">
              {panel.totalCount}
            </span>
          )}
        </h2>
        <div class="scope" role="group" aria-label="Which interactions">
          <button type="button" class="seg" aria-pressed={scope === 'CHANNEL'} onClick={() => pick('CHANNEL')} data-scope="CHANNEL">
            This channel
          </button>
          <button
            type="button"
            class="seg"
            aria-pressed={scope === 'PROFILE'}
            onClick={() => pick('PROFILE')}
            data-scope="PROFILE"
            disabled={!hasProfile && scope !== 'PROFILE'}
            title={hasProfile ? undefined : 'The contact belongs to no profile'}
          >
            Whole profile
          </button>
        </div>
      </div>
      {liveState === 'reconnecting' && (
        <p class="notice warn" role="status">
          Reconnecting… the panel updates again once the connection is back.
        </p>
      )}
      {panel && requested && panel.scope !== requested && (
        <p class="notice" data-testid="scope-note">
          {requested === 'PROFILE'
            ? 'The customer’s profile holds no other contact: showing this channel.'
            : 'Showing the whole profile.'}
        </p>
      )}
      {liveError && <p class="notice warn">Live updates for this panel stopped: {liveError}</p>}
      {error && (
        <p class="error" role="alert">
          {error}{' '}
          <button type="button" class="btn small" onClick={() => reload()}>
            Retry
          </button>
        </p>
      )}
      {!panel && !error && <p class="empty">Loading…</p>}
      {panel && panel.rows.length === 0 && (
        <p class="empty">
          {panel.scope === 'PROFILE' ? 'No other interactions in this customer’s profile.' : 'No other interactions with this contact on this channel.'}
        </p>
      )}
      {panel && (
        <ul class="rows" data-testid="related-rows">
          {panel.rows.map((r) => (
            <li key={r.id}>
              <a
                class={`row${r.status === 'CLOSED' ? ' closed' : ''}${fresh.has(r.id) ? ' fresh' : ''}`}
                href={hrefFor(r.id)}
                onClick={linkHandler(open, r.id)}
                data-id={r.id}
                data-status={r.status}
              >
                <ChannelIcon channel={r.channel} />
                <span class="row-main">
                  <span class="row-top">
                    <span class="row-name">{r.contact.name || r.contact.address}</span>
                    {r.lastMessage && (
                      <time class="row-time" dateTime={r.lastMessage.sentAt} title={fullWhen(r.lastMessage.sentAt)}>
                        {shortWhen(r.lastMessage.sentAt, now)}
                      </time>
                    )}
                  </span>
                  <span class="row-preview">{r.lastMessage?.preview ?? 'No messages'}</span>
                  <span class="row-bottom">
                    <span class="queue row-queue">{r.queue?.name ?? 'No queue'}</span>
                    <StateBadge row={r} />
                  </span>
                </span>
              </a>
            </li>
          ))}
        </ul>
      )}
      {panel?.hasNextPage && (
        <button type="button" class="btn more" onClick={more} disabled={loadingMore} data-testid="related-more">
          {loadingMore ? 'Loading…' : `More (${Math.max(0, panel.totalCount - panel.rows.length)} more)`}
        </button>
      )}
    </aside>
  );
}
