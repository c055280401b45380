/** Working hours: is a moment inside a person's working week, in their own time zone. */
import type { DetectConfig, Weekday } from '../config/index.js';

export interface WorkingHours {
  readonly timeZone: string;
  readonly days: readonly Weekday[];
  readonly start: string;
  readonly end: string;
}

const dayNames: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
// Memos of Intl answers, which depend on the zone alone: nothing a test or a node could tell apart is shared.
const formatters = new Map<string, Intl.DateTimeFormat>();
/** The latest offset found per zone and the quarter hour it holds for: Intl is slow, offsets rarely change. */
const offsets = new Map<string, { quarter: number; minutes: number }>();

/** A user's working hours: their own entry over the default, key by key. */
export function workingHoursOf(config: DetectConfig['workingHours'], user: string): WorkingHours {
  const own = config.users[user] ?? {};
  return {
    timeZone: own.timeZone ?? config.default.timeZone,
    days: own.days ?? config.default.days,
    start: own.start ?? config.default.start,
    end: own.end ?? config.default.end,
  };
}

/** The zone's offset from UTC in minutes at `seconds`; zones change offset only on quarter hours. */
function offsetMinutes(timeZone: string, seconds: number): number {
  const quarter = Math.floor(seconds / 900);
  const cached = offsets.get(timeZone);
  if (cached?.quarter === quarter) return cached.minutes;
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const at = quarter * 900 * 1000;
  const parts = Object.fromEntries(format.formatToParts(new Date(at)).map((p) => [p.type, Number(p.value)]));
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute);
  const minutes = Math.round((wall - at) / 60_000);
  offsets.set(timeZone, { quarter, minutes });
  return minutes;
}

/** The weekday and minute of the day at `seconds` (since the epoch) in a time zone. */
export function localTime(timeZone: string, seconds: number): { day: Weekday; minute: number } {
  const local = new Date((Math.floor(seconds / 60) + offsetMinutes(timeZone, seconds)) * 60_000);
  return { day: dayNames[local.getUTCDay()], minute: local.getUTCHours() * 60 + local.getUTCMinutes() };
}

const minutes = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));

/**
 * Inside working time: a working day and between start and end. When end ≤ start the shift spans
 * midnight and belongs to the day it starts on.
 */
export function isWorkingTime(hours: WorkingHours, seconds: number): boolean {
  const { day, minute } = localTime(hours.timeZone, seconds);
  const start = minutes(hours.start);
  const end = minutes(hours.end);
  if (start < end) return hours.days.includes(day) && minute >= start && minute < end;
  if (minute >= start) return hours.days.includes(day);
  const yesterday = dayNames[(dayNames.indexOf(day) + 6) % 7];
  return minute < end && hours.days.includes(yesterday);
}

/** One line for people: `Sun 01:18 in America/New_York`. */
export function describeLocalTime(timeZone: string, seconds: number): string {
  const { day, minute } = localTime(timeZone, seconds);
  const hh = String(Math.floor(minute / 60)).padStart(2, '0');
  const mm = String(minute % 60).padStart(2, '0');
  return `${day[0].toUpperCase()}${day.slice(1)} ${hh}:${mm} in ${timeZone}`;
}
