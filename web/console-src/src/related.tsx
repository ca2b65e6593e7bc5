// The Related panel: the customer's other interactions, live.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { explain, gql, Q_RELATED, S_RELATED, type Connection, type RelatedChange, type Row, type Scope } from './api';
import { Breakable, hrefFor, linkHandler, StateBadge, useCtx } from './ctx';
import { fullWhen, shortWhen } from './format';
import { ChannelIcon } from './icons';
import type { LiveState } from './live';
import { appendPage, applyChange, fromConnection, type PanelState } from './panel';

export function RelatedPanel({
  id,
  liveState,
  onScopeChanged,
  onCount,
}: {
  id: string;
  liveState: LiveState;
  onScopeChanged: () => void;
  /** Told the panel's total whenever it changes (for a tab's label). */
  onCount?: (n: number | null) => void;
}) {
  const { apiKey, live, now, open, refused, onRow } = useCtx();
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

  useEffect(() => onCount?.(panel ? panel.totalCount : null), [panel, onCount]);

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
      if (n === seq.current && !refused(e)) setError(explain(e, 'load the Related panel'));
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

  const applyOne = useCallback(
    (ch: RelatedChange) => {
      const p = panelRef.current;
      if (!p) return;
      const next = applyChange(p, ch, id);
      if (next === null) {
        if (ch.scope !== p.scope) onScopeChanged();
        scheduleReload();
      } else {
        panelRef.current = next;
        setPanel(next);
      }
    },
    [id, onScopeChanged, scheduleReload],
  );

  useEffect(() => {
    const stop = live.subscribe<{ relatedChanged: RelatedChange }>(
      S_RELATED,
      { id },
      {
        next: (d) => {
          const ch = d.relatedChanged;
          setLiveError(null);
          applyOne(ch);
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
        error: (m, retrying) => setLiveError(retrying ? `paused (${m}); resuming…` : m),
        resync: () => {
          setLiveError(null);
          reload();
        },
      },
    );
    const off = live.onReconnect(() => reload());
    return () => {
      stop();
      off();
    };
  }, [live, id, reload, applyOne]);

  // This console's own writes (a close, a reopen, a reply) on rows it shows.
  useEffect(
    () =>
      onRow((row) => {
        const p = panelRef.current;
        if (!p || row.id === id || !p.rows.some((r) => r.id === row.id)) return;
        applyOne({ kind: 'UPDATED', scope: p.scope ?? 'CHANNEL', interactionId: row.id, interaction: row });
      }),
    [onRow, id, applyOne],
  );

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
      if (!refused(e)) setError(explain(e, 'load more'));
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
      {liveError && <p class="notice warn">Live updates for this panel: {liveError}</p>}
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
                    <span class="row-name">
                      <Breakable text={r.contact.name || r.contact.address} />
                    </span>
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
