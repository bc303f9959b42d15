/** Google's error bodies, as the gateway will see them from the real services. */

export const GOOGLE_STATUS_NAMES: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const DEFAULT_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Request contains an invalid argument.',
  403: "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist).",
  404: 'Requested entity was not found.',
  429: 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
  504: 'The request timed out. Please try again.',
};

export const CHAT_METHOD = 'google.cloud.aiplatform.v1.PredictionService.ChatCompletions';

export const UNAUTHENTICATED_MESSAGE =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const MISSING_CREDENTIALS_MESSAGE =
  'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

export type AuthFailureReason =
  | 'ACCESS_TOKEN_EXPIRED'
  | 'ACCESS_TOKEN_TYPE_UNSUPPORTED'
  | 'CREDENTIALS_MISSING';

/** Vertex wraps errors in a one-element array on some paths; the gateway must cope with both. */
export type ErrorShape = 'object' | 'array';

export interface GoogleRpcError {
  error: { code: number; message: string; status: string; details?: unknown[] };
}

export function statusName(code: number): string {
  return GOOGLE_STATUS_NAMES[code] ?? (code >= 500 ? 'INTERNAL' : 'UNKNOWN');
}

export function googleError(code: number, message?: string, details?: unknown[]): GoogleRpcError {
  const error: GoogleRpcError['error'] = {
    code,
    message: message ?? DEFAULT_MESSAGES[code] ?? statusName(code),
    status: statusName(code),
  };
  if (details) error.details = details;
  return { error };
}

export function shapeError(body: GoogleRpcError, shape: ErrorShape = 'object'): unknown {
  return shape === 'array' ? [body] : body;
}

export function unauthenticatedError(reason: AuthFailureReason, message?: string): GoogleRpcError {
  const defaultMessage =
    reason === 'CREDENTIALS_MISSING' ? MISSING_CREDENTIALS_MESSAGE : UNAUTHENTICATED_MESSAGE;
  return googleError(401, message ?? defaultMessage, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason,
      domain: 'googleapis.com',
      metadata: { service: 'aiplatform.googleapis.com', method: CHAT_METHOD },
    },
  ]);
}

/** The body for a directive- or fault-requested status; a 401 gets the expired-token details. */
export function errorForStatus(code: number, message?: string): GoogleRpcError {
  return code === 401
    ? unauthenticatedError('ACCESS_TOKEN_EXPIRED', message)
    : googleError(code, message);
}

/** OAuth token-endpoint errors are flat RFC 6749 bodies, not google.rpc.Status. */
export interface OAuthError {
  error: string;
  error_description?: string;
}

export const TOKEN_ERRORS = {
  invalidSignature: {
    error: 'invalid_grant',
    error_description: 'Invalid JWT Signature.',
  },
  badTimeframe: {
    error: 'invalid_grant',
    error_description:
      'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
  },
  unknownAccount: {
    error: 'invalid_grant',
    error_description: 'Invalid grant: account not found',
  },
  badAudience: (tokenUri: string): OAuthError => ({
    error: 'invalid_grant',
    error_description: `Invalid JWT: Failed audience check. The right audience is ${tokenUri}`,
  }),
  missingScope: {
    error: 'invalid_scope',
    error_description: 'Empty or missing scope not allowed.',
  },
  badScope: {
    error: 'invalid_scope',
    error_description: 'Invalid OAuth scope or ID token audience provided.',
  },
  unsupportedGrant: (grantType: string): OAuthError => ({
    error: 'unsupported_grant_type',
    error_description: `Invalid grant_type: ${grantType}`,
  }),
  invalidRequest: (description: string): OAuthError => ({
    error: 'invalid_request',
    error_description: description,
  }),
} as const;

/** What a queued token-endpoint fault answers when the test gives no body of its own. */
export function tokenErrorForStatus(code: number, message?: string): OAuthError {
  if (code >= 500 || code === 429) {
    return { error: 'temporarily_unavailable', error_description: message ?? 'Try again later.' };
  }
  return { error: 'invalid_grant', error_description: message ?? 'Invalid JWT Signature.' };
}
