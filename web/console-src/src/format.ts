// Dates, times and labels as the console shows them.
import type { Channel, ClosedState } from './api';

export const channelNames: Record<Channel, string> = {
  WEBCHAT: 'Web chat',
  EMAIL: 'Email',
  SMS: 'SMS',
  WHATSAPP: 'WhatsApp',
  MESSENGER: 'Messenger',
  INSTAGRAM: 'Instagram',
  TWITTER: 'Twitter/X',
  VOICE: 'Voice',
};

export const closedNames: Record<ClosedState, string> = {
  CLOSED: 'Closed',
  IGNORED: 'Ignored',
  SPAM: 'Spam',
};

const sameDay = (a: Date, b: Date) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

/**
 * When, short: relative for today ("just now", "5 min ago", "3 h ago"),
 * otherwise a date ("12 Mar", or "12 Mar 2024" in another year).
 */
export function shortWhen(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  if (sameDay(t, now)) {
    const min = Math.floor((now.getTime() - t.getTime()) / 60_000);
    if (min < 1) return 'just now';
    if (min < 60) return `${min} min ago`;
    return `${Math.floor(min / 60)} h ago`;
  }
  const opts: Intl.DateTimeFormatOptions = { day: 'numeric', month: 'short' };
  if (t.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return t.toLocaleDateString(undefined, opts);
}

/** The full date and time, for a title on hover. */
export function fullWhen(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return t.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' });
}

/** A message's time in the conversation: the time of day, with the date when not today. */
export function messageWhen(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const time = t.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (sameDay(t, now)) return time;
  const opts: Intl.DateTimeFormatOptions = { day: 'numeric', month: 'short' };
  if (t.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return `${t.toLocaleDateString(undefined, opts)}, ${time}`;
}
