/** What the socket needs of a transport (native WebSocket or the HTTP fallback). */
export interface TransportEvents {
  open(protocol: string, extensions: string): void;
  /** text as string, binary as bytes */
  message(data: string | Uint8Array): void;
  /** `error` set when the close follows a failure (an error event is fired first); `status` when an HTTP status explains it */
  close(code: number, reason: string, wasClean: boolean, error?: string, status?: number): void;
}

export interface Transport {
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}
