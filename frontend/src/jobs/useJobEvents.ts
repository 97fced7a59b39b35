// Follows a job over its server-sent events (GET /v1/jobs/{id}/events): `state` and
// `progress` as they happen, then `done`, after which the server closes the stream.
// The browser's EventSource reconnects by itself after a dropped connection and sends
// Last-Event-ID, so the stream resumes where it stopped; we close it at `done` (or it
// would reconnect to a finished stream). A refused stream (401, 404) ends as `failed`.
import { useEffect, useRef, useState } from 'react';
import type { Progress } from './queries';

export interface JobEventData {
  job_id: string;
  state: string;
  progress: Progress;
  cancel_requested: boolean;
}

export type Connection = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed';

export function eventsUrl(id: string): string {
  return `/v1/jobs/${encodeURIComponent(id)}/events`;
}

function parse(event: MessageEvent): JobEventData | null {
  try {
    const data = JSON.parse(String(event.data)) as Partial<JobEventData>;
    if (typeof data.state !== 'string' || typeof data.progress !== 'object') return null;
    return data as JobEventData;
  } catch {
    return null;
  }
}

export function useJobEvents(
  id: string,
  enabled: boolean,
  /** Called once the stream has ended (`done`) or was refused: time to re-read the job. */
  onEnd?: () => void,
): { latest: JobEventData | null; connection: Connection } {
  const [latest, setLatest] = useState<JobEventData | null>(null);
  const [connection, setConnection] = useState<Connection>('connecting');
  const onEndRef = useRef(onEnd);
  useEffect(() => {
    onEndRef.current = onEnd;
  }, [onEnd]);

  useEffect(() => {
    if (!enabled) return undefined;
    // Same origin: the session cookie goes along (withCredentials says so explicitly).
    const source = new EventSource(eventsUrl(id), { withCredentials: true });
    setConnection('connecting');
    const read = (event: Event) => {
      const data = parse(event as MessageEvent);
      if (data) setLatest(data);
    };
    const onDone = (event: Event) => {
      read(event);
      source.close();
      setConnection('ended');
      onEndRef.current?.();
    };
    source.onopen = () => setConnection('live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setConnection('failed');
        onEndRef.current?.();
      } else {
        setConnection('reconnecting');
      }
    };
    source.addEventListener('state', read);
    source.addEventListener('progress', read);
    source.addEventListener('done', onDone);
    return () => {
      source.removeEventListener('state', read);
      source.removeEventListener('progress', read);
      source.removeEventListener('done', onDone);
      source.close();
    };
  }, [id, enabled]);

  return { latest, connection };
}
