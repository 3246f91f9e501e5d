/**
 * Typed errors with stable codes, in the style of undici: callers switch on
 * `code`, never on message text.
 */
export class GatehouseError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Configuration could not be loaded or is invalid. `issues` lists each bad key by path. */
export class ConfigError extends GatehouseError {
  readonly issues: string[];
  constructor(message: string, issues: string[] = [], options?: { cause?: unknown }) {
    super('GH_CONFIG_INVALID', message, options);
    this.issues = issues;
  }
}

/** A backend could not be reached or answered wrongly. */
export class BackendError extends GatehouseError {
  /** HTTP status to answer the client with if the handshake is still open (502 / 504). */
  readonly status: number;
  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/**
 * The state shared by a cluster's processes (Redis, the primary) cannot be
 * reached. Whatever depends on it alone — a single-use ticket — is refused
 * (503 `shared_state_unavailable`), never decided without it.
 */
export class SharedStateUnavailable extends GatehouseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GH_SHARED_STATE_UNAVAILABLE', message, options);
  }
}
