/** The one error type of distribution: a stable `code` that ends up in the package's status. */
export class DistributionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DistributionError';
  }
}

/** Work for a desired state that a newer one replaced (not a failure: nothing is reported). */
export class SupersededError extends DistributionError {
  constructor() {
    super('superseded', 'a newer desired state replaced this one');
  }
}

export function asDistributionError(e: unknown, code = 'install_failed'): DistributionError {
  return e instanceof DistributionError
    ? e
    : new DistributionError(code, e instanceof Error ? e.message : String(e));
}
