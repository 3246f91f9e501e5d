/**
 * Event classes with the WHATWG shapes (Node 20 has Event and EventTarget but
 * no CloseEvent, and its MessageEvent is not always what libraries expect).
 */
export class GatehouseMessageEvent extends Event {
  readonly data: string | ArrayBuffer | Blob;
  readonly origin: string;
  constructor(data: string | ArrayBuffer | Blob, origin = '') {
    super('message');
    this.data = data;
    this.origin = origin;
  }
}

export class GatehouseCloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(code: number, reason: string, wasClean: boolean) {
    super('close');
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
}

export class GatehouseErrorEvent extends Event {
  readonly message: string;
  readonly error: unknown;
  constructor(message: string, error?: unknown) {
    super('error');
    this.message = message;
    this.error = error;
  }
}
