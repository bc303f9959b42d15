/**
 * Every failure the gateway reports is a GatewayError: a status, an OpenAI error `type`, a stable
 * `code` callers can switch on, and a message a user can act on. It is rendered in exactly one
 * place (`toResponse`), so the wire shape `{"error":{"message","type","param","code"}}` that the
 * OpenAI SDKs parse cannot drift between routes. Messages never carry secrets.
 */

export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'api_error'
  | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType; param: string | null; code: string | null };
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly code: string;
  readonly param: string | null;
  /**
   * Read-only: one GatewayError can answer many requests (every caller that waited on the same
   * failed token exchange gets the same one), so per-request headers go on a copy
   * (`withHeaders`), never on the original.
   */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    type: OpenAIErrorType,
    code: string,
    message: string,
    options: { param?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }

  /** The same error with more response headers, for one request's answer. */
  withHeaders(extra: Readonly<Record<string, string>>): GatewayError {
    return new GatewayError(this.status, this.type, this.code, this.message, {
      param: this.param,
      headers: { ...this.headers, ...extra },
    });
  }

  toJSON(): OpenAIErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }

  toResponse(): Response {
    return new Response(JSON.stringify(this.toJSON()), {
      status: this.status,
      headers: { 'content-type': 'application/json', ...this.headers },
    });
  }
}

export const invalidRequest = (code: string, message: string, param: string | null = null) =>
  new GatewayError(400, 'invalid_request_error', code, message, { param });

export const notFound = (message: string) =>
  new GatewayError(404, 'not_found_error', 'not_found', message);

/** The OpenAI type a client SDK expects for an HTTP status it did not produce itself. */
export function errorTypeForStatus(status: number): OpenAIErrorType {
  switch (status) {
    case 400:
    case 409:
    case 413:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 429:
      return 'rate_limit_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}
