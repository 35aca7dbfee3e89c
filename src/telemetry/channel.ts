// The bounded telemetry channel between the POST handlers and the one processor.
// Why a bound and not a growing queue: the Go original's buffered channel of 100 is
// the contract operators know, and an unbounded queue would hide a stuck disk behind
// growing memory until the kernel kills the process and every queued update with it.
// A full channel is answered 503 + Retry-After at once (never a blocked request).

/** The channel is closed: the service is shutting down, no more sends are accepted. */
export class ChannelClosedError extends Error {
  constructor() {
    super("telemetry channel is closed");
    this.name = "ChannelClosedError";
  }
}

export interface Channel<T> extends AsyncIterable<T[]> {
  /** Items waiting for the processor. */
  readonly depth: number;
  /** Fixed bound given at construction. */
  readonly capacity: number;
  readonly closed: boolean;
  /**
   * Enqueues without waiting. Returns false when the channel holds `capacity` items
   * (the caller answers 503; the item is not kept). Throws ChannelClosedError after close().
   * Items are delivered in exactly the order trySend accepted them.
   */
  trySend(item: T): boolean;
  /**
   * Stops accepting. Items already accepted are still delivered; the iterator ends after
   * the last of them. Idempotent.
   */
  close(): void;
  /**
   * Single consumer: each step yields every item waiting at that moment (at least one),
   * oldest first, so the processor can commit them as one batch. Iterating twice is an error.
   */
  [Symbol.asyncIterator](): AsyncIterator<T[]>;
}

export function createChannel<T>(capacity: number): Channel<T> {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("channel capacity must be a positive integer");
  let queue: T[] = [];
  let closed = false;
  let iterating = false;
  let wake: (() => void) | undefined;

  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  return {
    get depth() {
      return queue.length;
    },
    capacity,
    get closed() {
      return closed;
    },
    trySend(item) {
      if (closed) throw new ChannelClosedError();
      if (queue.length >= capacity) return false;
      queue.push(item);
      notify();
      return true;
    },
    close() {
      closed = true;
      notify();
    },
    [Symbol.asyncIterator]() {
      if (iterating) throw new Error("channel already has a consumer");
      iterating = true;
      return {
        async next(): Promise<IteratorResult<T[]>> {
          while (queue.length === 0) {
            if (closed) return { done: true, value: undefined };
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
          const batch = queue;
          queue = [];
          return { done: false, value: batch };
        },
      };
    },
  };
}
