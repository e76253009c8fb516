/**
 * A round-robin queue over stores: one FIFO per key (the store's instanceId), served in a ring.
 *
 * `shift()` takes the head of the store at the front of the ring and, if that store still has work, moves it to the
 * back. A store that starts queueing joins at the back. So when a slot frees, the next store in the ring gets it,
 * and a store with 2 queued calls waits at most one turn of every other waiting store, however many calls those
 * stores have queued (a store with 200 queued calls gets one turn per round, like everyone else).
 */

/** An array-backed FIFO whose shift is O(1) amortised (Array#shift is O(n) on long queues). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined as T; // let it be collected
    this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

export class FairQueue<T> {
  /** Insertion order of the Map is the ring order: the first key is the store whose turn is next. */
  private readonly queues = new Map<string, Fifo<T>>();
  private count = 0;

  /** Items queued over all stores. */
  get size(): number {
    return this.count;
  }

  /** Stores with at least one queued item. */
  get stores(): number {
    return this.queues.size;
  }

  /** Appends `item` to `key`'s FIFO; a store that had nothing queued joins the ring at the back. */
  push(key: string, item: T): void {
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = new Fifo<T>();
      this.queues.set(key, queue);
    }
    queue.push(item);
    this.count += 1;
  }

  /** Removes the next item in round-robin order, or undefined when empty. */
  shift(): { key: string; item: T } | undefined {
    const first = this.queues.entries().next();
    if (first.done === true) return undefined;
    const [key, queue] = first.value;
    const item = queue.shift() as T;
    this.count -= 1;
    this.queues.delete(key);
    if (queue.length > 0) this.queues.set(key, queue); // back of the ring
    return { key, item };
  }

  /** Removes and returns everything queued for `key`, in order (its place in the ring goes with it). */
  remove(key: string): T[] {
    const queue = this.queues.get(key);
    if (queue === undefined) return [];
    this.queues.delete(key);
    const items = queue.drain();
    this.count -= items.length;
    return items;
  }

  /** Removes and returns everything, in no particular fairness order. */
  drain(): T[] {
    const all: T[] = [];
    for (const queue of this.queues.values()) all.push(...queue.drain());
    this.queues.clear();
    this.count = 0;
    return all;
  }
}
