/**
 * A histogram with one label, kept in plain arrays for calls that happen many times per IMAP
 * command (store reads run once per message of a FETCH). prom-client's `observe()` hashes its
 * label object on every call; here a call is a map lookup and a bucket scan. prom-client still
 * writes the exposition: the registry accepts any metric whose `get()` returns its values.
 */

interface Series {
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName: string;
}

export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #label: string;
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(name: string, help: string, label: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#label = label;
    this.#buckets = buckets;
  }

  observe(labelValue: string, value: number): void {
    let series = this.#series.get(labelValue);
    if (series === undefined) {
      series = { counts: new Float64Array(this.#buckets.length + 1), sum: 0, count: 0 };
      this.#series.set(labelValue, series);
    }
    const buckets = this.#buckets;
    let i = 0;
    while (i < buckets.length && value > buckets[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  /** The samples in prom-client's shape: cumulative `_bucket`s, `_sum` and `_count`. */
  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Sample[];
  }> {
    const values: Sample[] = [];
    for (const [labelValue, series] of this.#series) {
      let cumulative = 0;
      this.#buckets.forEach((le, i) => {
        cumulative += series.counts[i]!;
        values.push({
          value: cumulative,
          labels: { le, [this.#label]: labelValue },
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({
        value: series.count,
        labels: { le: "+Inf", [this.#label]: labelValue },
        metricName: `${this.name}_bucket`,
      });
      values.push({
        value: series.sum,
        labels: { [this.#label]: labelValue },
        metricName: `${this.name}_sum`,
      });
      values.push({
        value: series.count,
        labels: { [this.#label]: labelValue },
        metricName: `${this.name}_count`,
      });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  reset(): void {
    this.#series.clear();
  }
}
