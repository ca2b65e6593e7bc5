// The customer pane: who the agent is talking to. The contact (its channel,
// address and attributes, with who set them), and its profile: the
// identifiers that tie the profile together, each marked attested or
// claimed, why each contact is linked, and the profiles that share a value
// with it without merging (suggestions), which an admin confirms or
// dismisses here.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  checkUserErrors,
  explain,
  gql,
  M_CONFIRM,
  M_DISMISS,
  Q_CUSTOMER,
  type ContactInfo,
  type Customer,
  type ProfileLink,
  type Suggestion,
  type UserError,
} from './api';
import { Breakable, useCtx } from './ctx';
import { channelNames, fullWhen, shortWhen } from './format';
import { ChannelIcon } from './icons';

/** How much a profile's identifier is worth: the channel vouches for it, someone said so, or it was linked by hand. */
export type Trust = 'attested' | 'claimed' | 'manual';

const trustText: Record<Trust, { label: string; help: string }> = {
  attested: {
    label: 'Attested',
    help: 'Vouched for: the sender’s own address or number, or a value a trusted integration or an admin attested.',
  },
  claimed: { label: 'Claimed', help: 'Someone said so (typed into a form, set by an agent): it suggests links, it does not make them.' },
  manual: { label: 'Manual', help: 'An admin linked it by hand.' },
};

const reasonText: Record<Suggestion['reason'], string> = {
  CLAIMED: 'typed, not vouched for',
  AGENT_SET: 'set by an agent',
  NEVER_MERGES: 'a shared reference',
  MAX_PER_PROFILE: 'over the rule’s limit',
};

/** The trust of a link, from its source and reason. */
export function linkTrust(l: ProfileLink): Trust {
  if (l.reason === 'MANUAL') return 'manual';
  return l.source === 'ATTESTED' ? 'attested' : 'claimed';
}

/** An identifier's trust: attested when any link by it is attested, else claimed (null when no link names it). */
export function identifierTrust(key: string, value: string, links: ProfileLink[]): Trust | null {
  const by = links.filter((l) => l.reason === 'RULE' && l.key === key && l.value === value);
  if (by.length === 0) return null;
  return by.some((l) => linkTrust(l) === 'attested') ? 'attested' : 'claimed';
}

function TrustMark({ trust }: { trust: Trust }) {
  const t = trustText[trust];
  return (
    <span class={`mark mark-${trust}`} title={t.help} data-testid="trust" data-trust={trust}>
      {t.label}
    </span>
  );
}

const contactLabel = (c: ContactInfo) => c.name || c.address;

/** Why a contact is in the profile, in a sentence. */
function why(l: ProfileLink): string {
  if (l.reason === 'MANUAL') return `Linked by hand${l.by ? ` by ${l.by}` : ''}.`;
  const how = linkTrust(l) === 'attested' ? 'its channel vouches for' : 'it claims';
  return l.key ? `Shares ${l.key} ${l.value ?? ''}: ${how} it.` : 'Linked by a rule.';
}

/** The profiles sharing a value with this one, and, for an admin, what to do about them. */
function Suggestions({ list, self, admin, onDone }: { list: Suggestion[]; self: string; admin: boolean; onDone: () => void }) {
  const { apiKey, refused } = useCtx();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const act = async (s: Suggestion, confirm: boolean) => {
    setBusy(s.id);
    setError(null);
    try {
      if (confirm) {
        const d = await gql<{ confirmSuggestion: { userErrors: UserError[] } }>(apiKey, M_CONFIRM, { id: s.id });
        checkUserErrors(d.confirmSuggestion);
      } else {
        const d = await gql<{ dismissSuggestion: { userErrors: UserError[] } }>(apiKey, M_DISMISS, { id: s.id });
        checkUserErrors(d.dismissSuggestion);
      }
      onDone();
    } catch (e) {
      if (!refused(e)) setError(explain(e, confirm ? 'merge the profiles' : 'keep the profiles apart'));
    } finally {
      setBusy(null);
    }
  };
  return (
    <>
      <h4>Possibly the same person</h4>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list.length === 0 ? (
        <p class="empty-inline">No other profile shares a value with this one.</p>
      ) : (
        <ul class="suggestions" data-testid="suggestions">
          {list.map((s) => {
            const other = s.profiles.find((p) => p.id !== self) ?? s.profiles[0];
            return (
              <li key={s.id} data-id={s.id} data-reason={s.reason}>
                <div class="link-top">
                  <span class="link-name breakable">
                    <Breakable text={other ? other.name : 'another profile'} />
                  </span>
                  <span class="mark mark-claimed" title={s.explanation}>
                    {reasonText[s.reason]}
                  </span>
                </div>
                <p class="link-why breakable">
                  <Breakable text={`Shares ${s.identifier.key} ${s.identifier.value}: ${s.explanation}.`} />
                </p>
                {admin && (
                  <p class="actions">
                    <button type="button" class="btn small" disabled={busy !== null} onClick={() => act(s, true)} data-testid="confirm">
                      Same person: merge
                    </button>{' '}
                    <button type="button" class="btn small" disabled={busy !== null} onClick={() => act(s, false)} data-testid="dismiss">
                      Not the same: keep apart
                    </button>
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </>
  );
}

export function CustomerPane({ id, epoch }: { id: string; epoch: number }) {
  const { apiKey, live, now, refused, viewer } = useCtx();
  const [c, setC] = useState<Customer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const seq = useRef(0);

  const load = useCallback(async () => {
    const n = ++seq.current;
    setLoading(true);
    try {
      const d = await gql<{ interaction: Customer | null }>(apiKey, Q_CUSTOMER, { id });
      if (n !== seq.current) return;
      setC(d.interaction);
      setError(null);
    } catch (e) {
      if (n === seq.current && !refused(e)) setError(explain(e, 'load the customer'));
    } finally {
      if (n === seq.current) setLoading(false);
    }
  }, [apiKey, id, refused]);

  useEffect(() => {
    load();
  }, [load, epoch]);
  useEffect(() => live.onReconnect(() => load()), [live, load]);

  const p = c?.profile ?? null;
  return (
    <section class="customer" aria-labelledby="customer-title" data-testid="customer" aria-busy={loading}>
      <div class="pane-head">
        <h2 id="customer-title">Customer</h2>
        <button type="button" class="btn small" onClick={load} disabled={loading} aria-label="Reload the customer details">
          Reload
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!c && !error && <p class="empty">Loading…</p>}
      {c && (
        <div class="pane-body">
          <section class="cust-section" aria-labelledby="contact-title" data-testid="contact-details" data-id={c.contact.id}>
            <h3 id="contact-title">Contact</h3>
            <dl class="facts">
              <dt>Name</dt>
              <dd data-testid="contact-name">{c.contact.name ?? <span class="muted">Not given</span>}</dd>
              <dt>Channel</dt>
              <dd>
                <span class="chip">
                  <ChannelIcon channel={c.contact.channel} size="sm" />
                  <span>{channelNames[c.contact.channel]}</span>
                </span>
              </dd>
              <dt>Address</dt>
              <dd class="breakable" data-testid="contact-address">
                <Breakable text={c.contact.address} />
              </dd>
            </dl>
            <h4>Attributes</h4>
            {c.contact.attributes.length === 0 ? (
              <p class="empty-inline">None recorded.</p>
            ) : (
              <dl class="facts" data-testid="attributes">
                {c.contact.attributes.map((a) => (
                  <div class="fact" key={a.key} data-key={a.key}>
                    <dt>{a.key}</dt>
                    <dd class="breakable">
                      <span data-testid="value">
                        <Breakable text={a.value} />
                      </span>{' '}
                      <TrustMark trust={a.source === 'ATTESTED' ? 'attested' : 'claimed'} />
                      {a.by && <span class="muted" data-testid="by"> by {a.by}</span>}
                    </dd>
                  </div>
                ))}
              </dl>
            )}
          </section>
          {p ? (
            <section class="cust-section" aria-labelledby="profile-title" data-testid="profile-details" data-id={p.id}>
              <h3 id="profile-title">
                Profile{' '}
                <span class="profile-title-name">
                  <Breakable text={p.name} />
                </span>
              </h3>
              <p class="chips" aria-label="Channels">
                {p.channels.map((ch) => (
                  <span class="chip" key={ch} data-channel={ch}>
                    <ChannelIcon channel={ch} size="sm" />
                    <span>{channelNames[ch]}</span>
                  </span>
                ))}
              </p>
              <h4>Identifiers</h4>
              {p.identifiers.length === 0 ? (
                <p class="empty-inline">None.</p>
              ) : (
                <ul class="idents" data-testid="identifiers">
                  {p.identifiers.map((i) => {
                    const t = i.source ? (i.source === 'ATTESTED' ? 'attested' : 'claimed') : identifierTrust(i.key, i.value, p.links);
                    return (
                      <li key={`${i.key}=${i.value}`} data-key={i.key} data-value={i.value}>
                        <div class="ident-top">
                          <span class="ident-value breakable">
                            <Breakable text={i.value} />
                          </span>
                          {t && <TrustMark trust={t} />}
                        </div>
                        <span class="ident-key">{i.key}</span>
                      </li>
                    );
                  })}
                </ul>
              )}
              <h4>Why each contact is linked</h4>
              {p.links.length === 0 ? (
                <p class="empty-inline">No links recorded.</p>
              ) : (
                <ul class="links" data-testid="links">
                  {p.links.map((l, i) => (
                    <li key={`${l.contact.id}-${i}`} data-contact={l.contact.id} data-reason={l.reason} data-source={l.source ?? ''}>
                      <ChannelIcon channel={l.contact.channel} size="sm" />
                      <div class="link-main">
                        <div class="link-top">
                          <span class="link-name breakable">
                            <Breakable text={contactLabel(l.contact)} />
                            {l.contact.id === c.contact.id && <span class="muted"> (this contact)</span>}
                          </span>
                          <TrustMark trust={linkTrust(l)} />
                        </div>
                        {l.contact.name && (
                          <p class="link-addr breakable">
                            {channelNames[l.contact.channel]} · <Breakable text={l.contact.address} />
                          </p>
                        )}
                        <p class="link-why breakable" data-testid="why">
                          <Breakable text={why(l)} />
                        </p>
                        <p class="link-when">
                          <time dateTime={l.linkedAt} title={fullWhen(l.linkedAt)}>
                            Linked {shortWhen(l.linkedAt, now)}
                          </time>
                        </p>
                      </div>
                    </li>
                  ))}
                </ul>
              )}
              <Suggestions list={p.suggestions} self={p.id} admin={viewer.role === 'admin'} onDone={load} />
            </section>
          ) : (
            <section class="cust-section" data-testid="profile-details" data-id="">
              <h3>Profile</h3>
              <p class="empty-inline">This contact belongs to no profile: no rule has linked it to another contact yet.</p>
            </section>
          )}
        </div>
      )}
    </section>
  );
}
