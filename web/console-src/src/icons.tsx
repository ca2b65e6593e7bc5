// Channel icons: small inline SVGs (no icon font, no external files), each on
// a coloured badge, with the channel's name as the accessible label.
import type { JSX } from 'preact';
import type { Channel } from './api';
import { channelNames } from './format';

const glyphs: Record<Channel, JSX.Element> = {
  WEBCHAT: <path d="M4 5h16v11H10l-5 4v-4H4z" />,
  EMAIL: (
    <>
      <rect x="3" y="5.5" width="18" height="13" rx="2" />
      <path d="M3.5 7l8.5 6 8.5-6" />
    </>
  ),
  SMS: (
    <>
      <rect x="7" y="2.5" width="10" height="19" rx="2" />
      <path d="M11 18h2" />
    </>
  ),
  WHATSAPP: (
    <>
      <path d="M12 3.5a8.5 8.5 0 0 0-7.3 12.8L3.5 20.5l4.3-1.1A8.5 8.5 0 1 0 12 3.5z" />
      <path d="M9 9.5c.3 2.5 2.5 4.8 5.5 5.5" />
    </>
  ),
  MESSENGER: (
    <>
      <path d="M12 3.5c-4.7 0-8.5 3.4-8.5 7.7 0 2.4 1.2 4.5 3 5.9v3.4l3-1.7c.8.2 1.6.3 2.5.3 4.7 0 8.5-3.4 8.5-7.9S16.7 3.5 12 3.5z" />
      <path d="M7.5 13l3-3 2.5 2 3.5-3" />
    </>
  ),
  INSTAGRAM: (
    <>
      <rect x="3.5" y="3.5" width="17" height="17" rx="5" />
      <circle cx="12" cy="12" r="4" />
      <path d="M17 7h.01" />
    </>
  ),
  TWITTER: <path d="M5 4.5l14 15M19 4.5l-14 15" />,
  VOICE: (
    <path d="M6 3.5h3l1.8 4.6-2.3 1.5a10.5 10.5 0 0 0 5.9 5.9l1.5-2.3 4.6 1.8v3a2 2 0 0 1-2.2 2A16.5 16.5 0 0 1 4 5.7a2 2 0 0 1 2-2.2z" />
  ),
};

export function ChannelIcon({ channel, size = 'md' }: { channel: Channel; size?: 'sm' | 'md' }) {
  const name = channelNames[channel] ?? channel;
  return (
    <span class={`ch ch-${channel.toLowerCase()} ch-${size}`} role="img" aria-label={name} title={name} data-channel={channel}>
      <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">
        {glyphs[channel] ?? <circle cx="12" cy="12" r="6" />}
      </svg>
    </span>
  );
}
