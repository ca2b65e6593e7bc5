// The agent console: sign-in, then the workspace: the inbox and search, the
// interaction (profile bar, conversation, reply, close/reopen), the Related
// panel and the customer pane, laid out for the width of the desk.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, explain, gql, M_PREFS, Q_VIEWER, type Row, type Viewer } from './api';
import { ConsoleCtx, hrefFor, inTextField, message, useNow, type Ctx } from './ctx';
import { InteractionView } from './conversation';
import { CustomerPane } from './customer';
import { connectLive, type Live, type LiveState } from './live';
import { RelatedPanel } from './related';
import { Sidebar } from './sidebar';

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

function idFromURL(): string | null {
  return new URLSearchParams(window.location.search).get('interaction');
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

// --- The console ---------------------------------------------------------

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

/**
 * The layout for the desk's width:
 *   wide    (1600 px and up): inbox | conversation | customer | Related
 *   medium  (1000-1599 px):   inbox | conversation | Related and customer as tabs
 *   narrow  (760-999 px):     inbox | conversation, Related and customer as tabs
 *   phone   (below 760 px):   the inbox, or the interaction with those tabs
 */
export type Mode = 'wide' | 'medium' | 'narrow' | 'phone';

const queries: [Mode, string][] = [
  ['wide', '(min-width: 1600px)'],
  ['medium', '(min-width: 1000px)'],
  ['narrow', '(min-width: 760px)'],
];

function currentMode(): Mode {
  for (const [m, q] of queries) if (window.matchMedia(q).matches) return m;
  return 'phone';
}

function useMode(): Mode {
  const [mode, setMode] = useState<Mode>(currentMode);
  useEffect(() => {
    const lists = queries.map(([, q]) => window.matchMedia(q));
    const f = () => setMode(currentMode());
    lists.forEach((l) => l.addEventListener('change', f));
    return () => lists.forEach((l) => l.removeEventListener('change', f));
  }, []);
  return mode;
}

type Tab = 'conversation' | 'related' | 'customer';
const tabNames: Record<Tab, string> = { conversation: 'Conversation', related: 'Related', customer: 'Customer' };

/** An ARIA tab strip: arrows move between tabs, the selected one is in the tab order. */
function Tabs({ tabs, selected, onSelect, counts, label }: { tabs: Tab[]; selected: Tab; onSelect: (t: Tab) => void; counts: Partial<Record<Tab, number | null>>; label: string }) {
  const onKey = (e: KeyboardEvent) => {
    const at = tabs.indexOf(selected);
    let next = -1;
    if (e.key === 'ArrowRight') next = (at + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') next = (at + tabs.length - 1) % tabs.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = tabs.length - 1;
    if (next < 0) return;
    e.preventDefault();
    onSelect(tabs[next]);
    (e.currentTarget as HTMLElement).querySelector<HTMLButtonElement>(`#tab-${tabs[next]}`)?.focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={onKey} data-testid="tabs">
      {tabs.map((t) => (
        <button
          type="button"
          role="tab"
          key={t}
          id={`tab-${t}`}
          aria-selected={t === selected}
          aria-controls={`pane-${t}`}
          tabIndex={t === selected ? 0 : -1}
          onClick={() => onSelect(t)}
          data-tab={t}
        >
          {tabNames[t]}
          {counts[t] != null && <span class="count">{counts[t]}</span>}
        </button>
      ))}
    </div>
  );
}

function Pane({ tab, shown, children }: { tab: Tab; shown: boolean; children: preact.ComponentChildren }) {
  return (
    <div class={`pane pane-${tab}`} role="tabpanel" id={`pane-${tab}`} aria-labelledby={`tab-${tab}`} hidden={!shown}>
      {children}
    </div>
  );
}

const shortcuts: [string, string][] = [
  ['j / ↓', 'Next interaction in the list'],
  ['k / ↑', 'Previous interaction in the list'],
  ['Enter', 'Open the focused interaction'],
  ['c', 'Write a reply'],
  ['Ctrl+Enter', 'Send the reply'],
  ['r', 'Show or hide the Related panel'],
  ['/', 'Search for a customer'],
  ['?', 'Show or hide these shortcuts'],
];

function Console({ apiKey, viewer, onSignOut }: { apiKey: string; viewer: Viewer; onSignOut: (why: string | null) => void }) {
  const live = useMemo(() => connectLive(apiKey), [apiKey]);
  useEffect(() => () => live.dispose(), [live]);
  const liveState = useLiveState(live);
  const now = useNow();
  const mode = useMode();
  const [showRelated, setShowRelated] = useState(viewer.preferences.showRelated);
  const [prefError, setPrefError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(idFromURL);
  const [tab, setTab] = useState<Tab>('conversation');
  const [sideTab, setSideTab] = useState<Tab>(viewer.preferences.showRelated ? 'related' : 'customer');
  const [relatedCount, setRelatedCount] = useState<number | null>(null);
  const [help, setHelp] = useState(false);
  const [said, setSaid] = useState('');
  // Bumped when a profile changes live (a merge or split), so the profile
  // bar and the customer pane reload too.
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
    setTab('conversation');
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

  // The live connection refused: ask once whether the key itself still
  // works, so a revoked key signs out at once rather than at the agent's
  // next action.
  useEffect(() => {
    if (liveState !== 'refused') return;
    gql<{ viewer: Viewer }>(apiKey, Q_VIEWER).catch((e) => refused(e));
  }, [liveState, apiKey, refused]);

  // The bus for this console's own writes.
  const rowListeners = useRef(new Set<(row: Row) => void>());
  const publishRow = useCallback((row: Row) => rowListeners.current.forEach((fn) => fn(row)), []);
  const onRow = useCallback((fn: (row: Row) => void) => {
    rowListeners.current.add(fn);
    return () => void rowListeners.current.delete(fn);
  }, []);

  const sayTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const announce = useCallback((text: string) => {
    setSaid(text);
    if (sayTimer.current) clearTimeout(sayTimer.current);
    sayTimer.current = setTimeout(() => setSaid(''), 4000);
  }, []);

  const showRelatedRef = useRef(showRelated);
  showRelatedRef.current = showRelated;
  const toggleRelated = useCallback(async () => {
    const next = !showRelatedRef.current;
    setShowRelated(next);
    setSideTab(next ? 'related' : 'customer');
    setTab((t) => (t === 'related' && !next ? 'conversation' : next && t !== 'conversation' ? 'related' : t));
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
      setPrefError(explain(e, 'save whether the Related panel is shown'));
    }
  }, [apiKey, refused]);

  // Shortcuts anywhere but in a text field.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === 'Escape' && help) {
        setHelp(false);
        return;
      }
      if (inTextField(e.target)) return;
      switch (e.key) {
        case 'r':
          if (!selected) return;
          e.preventDefault();
          toggleRelated();
          break;
        case 'c': {
          const box = document.getElementById('reply-body');
          if (!box) return;
          e.preventDefault();
          setTab('conversation');
          // On a narrow desk the box shows once the Conversation tab does.
          if (box.offsetParent !== null) box.focus();
          else setTimeout(() => box.focus(), 0);
          break;
        }
        case '/': {
          const s = document.getElementById('search-value');
          if (!s || s.offsetParent === null) return;
          e.preventDefault();
          s.focus();
          break;
        }
        case '?':
          e.preventDefault();
          setHelp((h) => !h);
          break;
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [selected, toggleRelated, help]);

  const ctx = useMemo<Ctx>(
    () => ({ apiKey, viewer, live, now, open, refused, publishRow, onRow, announce }),
    [apiKey, viewer, live, now, open, refused, publishRow, onRow, announce],
  );

  const related = selected && showRelated && (
    <RelatedPanel key={`r-${selected}`} id={selected} liveState={liveState} onScopeChanged={profileChanged} onCount={setRelatedCount} />
  );
  const customer = selected && <CustomerPane key={`c-${selected}`} id={selected} epoch={profileEpoch} />;
  const counts = { related: relatedCount };

  let workspace = null;
  if (selected) {
    if (mode === 'wide' || mode === 'medium') {
      const sideTabs: Tab[] = showRelated ? ['related', 'customer'] : ['customer'];
      const side = sideTabs.includes(sideTab) ? sideTab : sideTabs[0];
      workspace = (
        <div class={`workspace ws-${mode}${showRelated ? ' with-related' : ''}`}>
          <InteractionView
            key={selected}
            id={selected}
            showRelated={showRelated}
            onToggleRelated={toggleRelated}
            profileEpoch={profileEpoch}
            onProfileChanged={profileChanged}
          />
          {mode === 'wide' ? (
            <>
              <div class="column col-customer">{customer}</div>
              {related && <div class="column col-related">{related}</div>}
            </>
          ) : (
            <div class="column col-side">
              {sideTabs.length > 1 && <Tabs tabs={sideTabs} selected={side} onSelect={setSideTab} counts={counts} label="Beside the conversation" />}
              {related && (
                <Pane tab="related" shown={side === 'related'}>
                  {related}
                </Pane>
              )}
              <Pane tab="customer" shown={side === 'customer'}>
                {customer}
              </Pane>
            </div>
          )}
        </div>
      );
    } else {
      const tabs: Tab[] = showRelated ? ['conversation', 'related', 'customer'] : ['conversation', 'customer'];
      const cur = tabs.includes(tab) ? tab : 'conversation';
      const strip = <Tabs tabs={tabs} selected={cur} onSelect={setTab} counts={counts} label="Interaction" />;
      workspace = (
        <div class={`workspace ws-${mode} tab-${cur}`}>
          <InteractionView
            key={selected}
            id={selected}
            showRelated={showRelated}
            onToggleRelated={toggleRelated}
            profileEpoch={profileEpoch}
            onProfileChanged={profileChanged}
            tabs={strip}
          />
          {related && (
            <Pane tab="related" shown={cur === 'related'}>
              {related}
            </Pane>
          )}
          <Pane tab="customer" shown={cur === 'customer'}>
            {customer}
          </Pane>
        </div>
      );
    }
  }

  return (
    <ConsoleCtx.Provider value={ctx}>
      <div class={`app mode-${mode}${selected ? ' has-selection' : ''}${showRelated ? ' with-related' : ''}`} data-mode={mode}>
        <header class="top">
          <a class="brand" href="/" onClick={(e) => (e.preventDefault(), open(null))}>
            <span class="brand-mark" aria-hidden="true">
              R
            </span>
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
          <button type="button" class="btn small" onClick={() => setHelp((h) => !h)} aria-expanded={help} aria-keyshortcuts="?" data-testid="shortcuts">
            Shortcuts
          </button>
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
        {help && (
          <section class="help-panel" aria-labelledby="help-title" data-testid="shortcut-help">
            <h2 id="help-title">Keyboard shortcuts</h2>
            <dl>
              {shortcuts.map(([k, what]) => (
                <div key={k}>
                  <dt>
                    <kbd>{k}</kbd>
                  </dt>
                  <dd>{what}</dd>
                </div>
              ))}
            </dl>
            <button type="button" class="btn small" onClick={() => setHelp(false)}>
              Close
            </button>
          </section>
        )}
        <p class="sr-only" role="status" aria-live="polite" data-testid="announce">
          {said}
        </p>
        <div class="layout">
          <Sidebar selected={selected} visible={!(mode === 'phone' && selected)} />
          {workspace ?? (
            <main class="conv empty-state">
              <h1>Pick an interaction</h1>
              <p>Open one from the inbox (j and k move, Enter opens), or search for a customer by an identifier such as an email address.</p>
            </main>
          )}
        </div>
      </div>
    </ConsoleCtx.Provider>
  );
}
