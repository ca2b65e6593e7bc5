// The interaction: the profile bar, the header with its actions (close as
// Closed/Ignored/Spam, reopen), the conversation (paged upward, live) and the
// reply box. Writes show at once (optimistic) and are reconciled with the
// server's answer and its live events; every failure is said in words.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import {
  checkUserErrors,
  explain,
  gql,
  M_CLOSE,
  M_REOPEN,
  M_REPLY,
  Q_EARLIER,
  Q_INTERACTION,
  S_INTERACTION,
  type ClosedState,
  type Connection,
  type Interaction,
  type Message,
  type Profile,
  type Row,
  type UserError,
  UserErrorsError,
} from './api';
import { Breakable, canWrite, hrefFor, linkHandler, StateBadge, useCtx } from './ctx';
import { channelNames, closedNames, fullWhen, messageWhen } from './format';
import { ChannelIcon } from './icons';

function mergeMessages(a: Message[], b: Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of a) byId.set(m.id, m);
  for (const m of b) byId.set(m.id, m);
  return [...byId.values()].sort((x, y) => Date.parse(x.sentAt) - Date.parse(y.sentAt));
}

/** A reply on its way: shown at once, replaced by the stored message. */
interface Pending {
  key: string; // the clientMutationId: a retry stores nothing twice
  body: string;
  author: string | null;
  startedAt: number;
  error: string | null;
  sending: boolean;
}

/** How much of a reply still on its way (or refused) is shown: a bubble of
 * 256 KiB would fill the page with one message. */
const pendingShown = 2000;

/** Whether message m is the stored copy of pending reply p. */
const isCopyOf = (m: Message, p: Pending) =>
  m.direction === 'OUTBOUND' && m.body === p.body.trim() && (m.author ?? null) === p.author && Date.parse(m.sentAt) >= p.startedAt - 60_000;

/** The person's name for the profile bar: a contact's own name, else the profile's (an identifier today). */
export function personName(it: Pick<Interaction, 'contact'> & { profile: Profile | null }): string {
  const own = it.contact.name?.trim();
  if (own) return own;
  const other = it.profile?.contacts?.find((c) => c.name && c.name.trim())?.name?.trim();
  return other || it.profile?.name || it.contact.address;
}

const rowOf = (it: Row): Row => ({
  id: it.id,
  channel: it.channel,
  status: it.status,
  closedState: it.closedState,
  contact: it.contact,
  queue: it.queue,
  lastMessage: it.lastMessage,
});

const CLOSE_STATES: ClosedState[] = ['CLOSED', 'IGNORED', 'SPAM'];
const closeHelp: Record<ClosedState, string> = {
  CLOSED: 'Handled and done',
  IGNORED: 'Closed without a reply',
  SPAM: 'Unwanted',
};

let replySeq = 0;
const newReplyKey = () => `console-${Date.now().toString(36)}-${(++replySeq).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export function InteractionView({
  id,
  showRelated,
  onToggleRelated,
  profileEpoch,
  onProfileChanged,
  tabs,
}: {
  id: string;
  showRelated: boolean;
  onToggleRelated: () => void;
  profileEpoch: number;
  /** Called when a live update shows the interaction's profile changed. */
  onProfileChanged: () => void;
  /** The tab strip, in layouts that show the panels as tabs. */
  tabs?: ComponentChildren;
}) {
  const { apiKey, viewer, live, now, open, refused, publishRow, announce } = useCtx();
  const [it, setIt] = useState<Interaction | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState<null | 'close' | 'reopen'>(null);
  const [menu, setMenu] = useState(false);
  const [messages, setMessages] = useState<Message[]>([]);
  const [pending, setPending] = useState<Pending[]>([]);
  const [moved, setMoved] = useState<string | null>(null); // a reply that opened another interaction
  const [draft, setDraft] = useState('');
  const [replyError, setReplyError] = useState<string | null>(null); // a reply refused for what it says
  const [earlier, setEarlier] = useState<string | null>(null);
  const [loadingEarlier, setLoadingEarlier] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const keepFromBottom = useRef<number | null>(null);
  const stick = useRef(true);
  const loadedOnce = useRef(false);
  const messagesRef = useRef<Message[]>([]);
  messagesRef.current = messages;
  const profileRef = useRef<string | null>(null);
  const menuRef = useRef<HTMLDivElement>(null);
  const writable = canWrite(viewer);

  const nearBottom = () => {
    const el = scroller.current;
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const load = useCallback(async () => {
    try {
      const d = await gql<{ interaction: Interaction | null }>(apiKey, Q_INTERACTION, { id });
      if (!d.interaction) {
        setMissing(true);
        return;
      }
      stick.current = nearBottom();
      profileRef.current = d.interaction.profile?.id ?? null;
      setIt(d.interaction);
      const fetched = d.interaction.messages.edges.map((e) => e.node);
      setMessages((prev) => mergeMessages(prev, fetched));
      setPending((ps) => ps.filter((p) => !fetched.some((m) => isCopyOf(m, p))));
      if (!loadedOnce.current) {
        loadedOnce.current = true;
        const pi = d.interaction.messages.pageInfo;
        setEarlier(pi.hasPreviousPage ? pi.startCursor : null);
      }
      setError(null);
    } catch (e) {
      if (!refused(e)) setError(explain(e, 'load the interaction'));
    }
  }, [apiKey, id, refused]);

  useEffect(() => {
    load();
  }, [load, profileEpoch]);

  // The interaction itself, live: status, queue, profile, new messages.
  useEffect(() => {
    const stop = live.subscribe<{ interactionUpdated: Row & { profile: Profile | null } }>(
      S_INTERACTION,
      { id },
      {
        next: (d) => {
          const u = d.interactionUpdated;
          setIt((prev) => (prev ? { ...prev, ...u } : prev));
          if ((u.profile?.id ?? null) !== profileRef.current) {
            profileRef.current = u.profile?.id ?? null;
            onProfileChanged();
          }
          const last = u.lastMessage;
          if (last && !messagesRef.current.some((m) => m.id === last.id)) load();
        },
        error: () => {
          /* the page still works without it; the banner shows the connection */
        },
        resync: () => load(),
      },
    );
    const off = live.onReconnect(() => load());
    return () => {
      stop();
      off();
    };
  }, [live, id, load, onProfileChanged]);

  // --- Writes --------------------------------------------------------------

  const setStatus = async (next: ClosedState | null) => {
    if (!it || busy) return;
    const prev = it;
    const optimistic: Interaction = next ? { ...it, status: 'CLOSED', closedState: next } : { ...it, status: 'OPEN', closedState: null };
    const what = next ? `close the interaction as ${closedNames[next]}` : 'reopen the interaction';
    setMenu(false);
    setActionError(null);
    setBusy(next ? 'close' : 'reopen');
    setIt(optimistic);
    publishRow(rowOf(optimistic));
    try {
      if (next) {
        const d = await gql<{ closeInteraction: { interaction: Row | null; userErrors: UserError[] } }>(apiKey, M_CLOSE, { id, state: next });
        checkUserErrors(d.closeInteraction);
        const row = d.closeInteraction.interaction;
        if (row) {
          setIt((cur) => (cur ? { ...cur, ...row } : cur));
          publishRow(row);
        }
        announce(`Closed as ${closedNames[next]}.`);
      } else {
        const d = await gql<{ reopenInteraction: { interaction: Row | null; userErrors: UserError[] } }>(apiKey, M_REOPEN, { id });
        checkUserErrors(d.reopenInteraction);
        const row = d.reopenInteraction.interaction;
        if (row) {
          setIt((cur) => (cur ? { ...cur, ...row } : cur));
          publishRow(row);
        }
        announce('Reopened.');
      }
    } catch (e) {
      if (refused(e)) return;
      setIt((cur) => (cur ? { ...cur, status: prev.status, closedState: prev.closedState } : cur));
      publishRow(rowOf(prev));
      setActionError(explain(e, what));
    } finally {
      setBusy(null);
    }
  };

  const send = async (p: Pending) => {
    if (!it) return;
    setPending((ps) => ps.map((x) => (x.key === p.key ? { ...x, sending: true, error: null } : x)));
    stick.current = true;
    try {
      const input: Record<string, unknown> = {
        channel: it.channel,
        threadRef: it.threadRef,
        direction: 'OUTBOUND',
        contact: { address: it.contact.address },
        body: p.body,
        clientMutationId: p.key,
      };
      if (p.author) input.author = p.author;
      const d = await gql<{ recordMessage: { interaction: Row | null; message: Message | null; userErrors: UserError[] } }>(apiKey, M_REPLY, {
        in: input,
      });
      checkUserErrors(d.recordMessage);
      const { interaction: row, message: m } = d.recordMessage;
      setPending((ps) => ps.filter((x) => x.key !== p.key));
      if (row && row.id !== id) {
        // The thread was closed meanwhile: the reply opened a new interaction.
        setMoved(row.id);
        publishRow(row);
        announce('Your reply opened a new interaction.');
        return;
      }
      if (m) setMessages((ms) => mergeMessages(ms, [m]));
      if (row) {
        setIt((cur) => (cur ? { ...cur, ...row } : cur));
        publishRow(row);
      }
      announce('Reply sent.');
    } catch (e) {
      if (refused(e)) return;
      if (e instanceof UserErrorsError) {
        // Refused for what it says (too long, say): sending it again
        // cannot help, so it goes back to the reply box to be edited.
        setPending((ps) => ps.filter((x) => x.key !== p.key));
        setDraft((d) => (d.trim() ? d : p.body));
        setReplyError(explain(e, 'send the reply'));
        return;
      }
      setPending((ps) => ps.map((x) => (x.key === p.key ? { ...x, sending: false, error: explain(e, 'send the reply') } : x)));
    }
  };

  const submit = (e?: Event) => {
    e?.preventDefault();
    const body = draft.trim();
    if (!body || !it || it.status !== 'OPEN' || !writable) return;
    const p: Pending = { key: newReplyKey(), body, author: viewer.name, startedAt: Date.now(), error: null, sending: true };
    setPending((ps) => [...ps, p]);
    setDraft('');
    setReplyError(null);
    send(p);
  };

  // The close menu: Escape or a click elsewhere closes it.
  useEffect(() => {
    if (!menu) return;
    const onDown = (e: MouseEvent) => {
      if (menuRef.current && !menuRef.current.contains(e.target as Node)) setMenu(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setMenu(false);
        menuRef.current?.querySelector<HTMLButtonElement>('button.close-open')?.focus();
      }
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    menuRef.current?.querySelector<HTMLButtonElement>('[role=menuitem]')?.focus();
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [menu]);

  const menuKeys = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const items = [...(menuRef.current?.querySelectorAll<HTMLButtonElement>('[role=menuitem]') ?? [])];
    const at = items.findIndex((b) => b === document.activeElement);
    const next = (at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
    items[next]?.focus();
    e.preventDefault();
  };

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
      if (!refused(e)) setError(explain(e, 'load earlier messages'));
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
  }, [messages, pending]);

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
            {error}{' '}
            <button type="button" class="btn small" onClick={load}>
              Retry
            </button>
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  }
  const name = it.contact.name || it.contact.address;
  const shownPending = pending.filter((p) => !messages.some((m) => isCopyOf(m, p)));
  return (
    <main class="conv" aria-labelledby="conv-title" data-testid="interaction" data-id={it.id} data-status={it.status}>
      <button type="button" class="btn small back" onClick={() => open(null)}>
        ← Inbox
      </button>
      {it.profile && (
        <div class="profile-bar" data-testid="profile-bar" role="group" aria-label="Customer profile">
          <span class="profile-label">Profile</span>
          <strong class="profile-name" data-testid="person-name">
            {personName(it)}
          </strong>
          {personName(it) !== it.profile.name && (
            <span class="profile-key" title="The profile’s own name">
              <Breakable text={it.profile.name} />
            </span>
          )}
          <span class="profile-channels" role="list" aria-label="Channels">
            {it.profile.channels.map((c) => (
              <span class="chip" role="listitem" key={c} data-channel={c}>
                <ChannelIcon channel={c} size="sm" />
                <span class="chip-label">{channelNames[c]}</span>
              </span>
            ))}
          </span>
        </div>
      )}
      <div class="conv-head">
        <ChannelIcon channel={it.channel} />
        <div class="conv-title">
          <h1 id="conv-title">
            <Breakable text={name} />
          </h1>
          <p class="conv-meta">
            <span>{channelNames[it.channel]}</span>
            {it.contact.name && (
              <span class="addr">
                <Breakable text={it.contact.address} />
              </span>
            )}
            <span>{it.queue ? `Queue: ${it.queue.name}` : 'No queue'}</span>
            <StateBadge row={it} pending={busy !== null} />
          </p>
        </div>
        <div class="conv-actions">
          {writable && it.status === 'OPEN' && (
            <div class="menu-wrap" ref={menuRef}>
              <button
                type="button"
                class="btn close-open"
                aria-haspopup="menu"
                aria-expanded={menu}
                onClick={() => setMenu((m) => !m)}
                disabled={busy !== null}
                data-testid="close"
              >
                {busy === 'close' ? 'Closing…' : 'Close ▾'}
              </button>
              {menu && (
                <div class="menu" role="menu" aria-label="Close as" onKeyDown={menuKeys} data-testid="close-menu">
                  {CLOSE_STATES.map((s) => (
                    <button type="button" role="menuitem" key={s} data-state={s} onClick={() => setStatus(s)}>
                      <span class="menu-label">{closedNames[s]}</span>
                      <span class="menu-help">{closeHelp[s]}</span>
                    </button>
                  ))}
                </div>
              )}
            </div>
          )}
          {writable && it.status === 'CLOSED' && (
            <button type="button" class="btn" onClick={() => setStatus(null)} disabled={busy !== null} data-testid="reopen">
              {busy === 'reopen' ? 'Reopening…' : 'Reopen'}
            </button>
          )}
          <button
            type="button"
            class="btn toggle"
            aria-pressed={showRelated}
            onClick={onToggleRelated}
            data-testid="toggle-related"
            aria-keyshortcuts="r"
            title="Show or hide the Related panel for every interaction (saved with your key). Shortcut: r"
          >
            <span class="toggle-box" aria-hidden="true" />
            Related
          </button>
        </div>
      </div>
      {tabs}
      {actionError && (
        <p class="error" role="alert" data-testid="action-error">
          {actionError}{' '}
          <button type="button" class="btn small" onClick={() => setActionError(null)}>
            Dismiss
          </button>
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}{' '}
          <button type="button" class="btn small" onClick={load}>
            Retry
          </button>
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
        <ol class="msgs" aria-live="polite" aria-relevant="additions">
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
          {shownPending.map((p) => (
            <li key={p.key} class="msg out pending" data-pending={p.error ? 'failed' : 'sending'} data-testid="pending-reply">
              <div class="bubble">{p.body.length > pendingShown ? `${p.body.slice(0, pendingShown)}…` : p.body}</div>
              <div class="msg-meta">
                {p.error ? (
                  <span class="send-error" role="alert">
                    {p.error}{' '}
                    <button type="button" class="btn small" onClick={() => send(p)} disabled={p.sending} data-testid="reply-retry">
                      Retry
                    </button>{' '}
                    <button type="button" class="btn small" onClick={() => setPending((ps) => ps.filter((x) => x.key !== p.key))}>
                      Discard
                    </button>
                  </span>
                ) : (
                  'Sending…'
                )}
              </div>
            </li>
          ))}
        </ol>
      </div>
      {moved && (
        <p class="notice" role="status" data-testid="reply-moved">
          This interaction was closed meanwhile, so your reply opened a new one.{' '}
          <a href={hrefFor(moved)} onClick={linkHandler(open, moved)}>
            Open it
          </a>
        </p>
      )}
      {!writable ? (
        <p class="notice composer-note" data-testid="read-only">
          Your key is read-only ({viewer.role}): replying, closing and reopening are off.
        </p>
      ) : it.status === 'CLOSED' ? (
        <p class="notice composer-note" data-testid="closed-note">
          This interaction is closed ({closedNames[it.closedState ?? 'CLOSED']}). Reopen it to reply on this thread.
        </p>
      ) : (
        <form class="composer" onSubmit={submit} data-testid="composer">
          <label for="reply-body" class="sr-only">
            Reply to {name} on {channelNames[it.channel]}
          </label>
          <textarea
            id="reply-body"
            rows={2}
            value={draft}
            placeholder={`Reply on ${channelNames[it.channel]}${viewer.name ? ` as ${viewer.name}` : ''}…`}
            aria-keyshortcuts="c"
            onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit();
              else if (e.key === 'Escape') (e.target as HTMLTextAreaElement).blur();
            }}
          />
          {replyError && (
            <p class="send-error" role="alert" data-testid="reply-refused">
              {replyError}
            </p>
          )}
          <div class="composer-bar">
            <span class="hint">{draft.trim() ? 'Ctrl+Enter sends' : 'Write a reply to send it'}</span>
            <button type="submit" class="btn primary" disabled={!draft.trim()} data-testid="send">
              Send
            </button>
          </div>
        </form>
      )}
    </main>
  );
}
