import { act, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobProgress } from './JobProgress';
import { useJobEvents } from './useJobEvents';

/** A stand-in for the browser's EventSource that the test drives by hand. */
class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];
  readyState = FakeEventSource.CONNECTING;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, Set<(event: MessageEvent) => void>>();

  constructor(
    readonly url: string,
    readonly init?: EventSourceInit,
  ) {
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: MessageEvent) => void) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)?.add(listener);
  }

  removeEventListener(type: string, listener: (event: MessageEvent) => void) {
    this.listeners.get(type)?.delete(listener);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  // What the server (or the network) does:
  open() {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.();
  }

  emit(type: string, data: unknown, id: string) {
    const event = new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id });
    this.listeners.get(type)?.forEach((listener) => listener(event));
  }

  drop(closed = false) {
    this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
    this.onerror?.();
  }
}

const event = (state: string, done: number, total = 10, cancel = false) => ({
  job_id: 'j1',
  state,
  progress: { done, total, row_errors: 0 },
  cancel_requested: cancel,
});

function Live({ onEnd }: { onEnd: () => void }) {
  const { latest, connection } = useJobEvents('j1', true, onEnd);
  return (
    <JobProgress
      state={latest?.state ?? 'queued'}
      progress={latest?.progress ?? { done: 0, total: 10, row_errors: 0 }}
      cancelRequested={latest?.cancel_requested ?? false}
      connection={connection}
    />
  );
}

beforeEach(() => {
  FakeEventSource.instances = [];
  vi.stubGlobal('EventSource', FakeEventSource);
});
afterEach(() => vi.unstubAllGlobals());

describe('live job progress over server-sent events', () => {
  it('follows state and progress, then closes the stream at done', () => {
    const onEnd = vi.fn();
    render(<Live onEnd={onEnd} />);
    const source = FakeEventSource.instances[0];
    expect(source?.url).toBe('/v1/jobs/j1/events');
    expect(source?.init?.withCredentials).toBe(true);

    act(() => {
      source?.open();
      source?.emit('state', event('running', 0), '1');
    });
    expect(screen.getByRole('status')).toHaveTextContent('State: Running.');
    expect(screen.getByText('Updates live.')).toBeInTheDocument();

    act(() => source?.emit('progress', event('running', 4), '2'));
    expect(screen.getByText('4 of 10 rows done.')).toBeInTheDocument();
    const bar = screen.getByRole('progressbar', { name: '4 of 10 rows done.' });
    expect(bar).toHaveAttribute('value', '4');
    expect(bar).toHaveAttribute('max', '10');
    expect(onEnd).not.toHaveBeenCalled();

    act(() => source?.emit('done', event('succeeded', 10), '3'));
    expect(screen.getByRole('status')).toHaveTextContent('State: Succeeded.');
    expect(screen.getByText('10 of 10 rows done.')).toBeInTheDocument();
    expect(source?.readyState).toBe(FakeEventSource.CLOSED);
    expect(onEnd).toHaveBeenCalledTimes(1);
  });

  it('says it is reconnecting while the browser reconnects, and carries on after', () => {
    const onEnd = vi.fn();
    render(<Live onEnd={onEnd} />);
    const source = FakeEventSource.instances[0];
    act(() => {
      source?.open();
      source?.emit('progress', event('running', 2), '5');
      source?.drop();
    });
    expect(screen.getByText('Connection lost, reconnecting…')).toBeInTheDocument();
    expect(onEnd).not.toHaveBeenCalled();
    // The same EventSource reconnects (with Last-Event-ID): no second one is opened.
    act(() => {
      source?.open();
      source?.emit('progress', event('running', 6, 10, true), '6');
    });
    expect(FakeEventSource.instances).toHaveLength(1);
    expect(screen.queryByText('Connection lost, reconnecting…')).not.toBeInTheDocument();
    expect(screen.getByText('6 of 10 rows done.')).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('Cancellation requested');
  });

  it('hands over to re-reading the job when the stream is refused', () => {
    const onEnd = vi.fn();
    render(<Live onEnd={onEnd} />);
    act(() => FakeEventSource.instances[0]?.drop(true));
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(screen.queryByText('Updates live.')).not.toBeInTheDocument();
  });

  it('closes the stream when the page goes away', () => {
    const { unmount } = render(<Live onEnd={() => undefined} />);
    unmount();
    expect(FakeEventSource.instances[0]?.readyState).toBe(FakeEventSource.CLOSED);
  });
});
