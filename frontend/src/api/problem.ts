// RFC 9457 problem documents as Assay sends them (docs/errors.md).

export interface FieldError {
  field: string | null;
  code?: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  reason?: string;
  errors?: FieldError[];
  request_id?: string;
}

export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = 'ApiError';
    this.problem = problem;
  }

  get status(): number {
    return this.problem.status;
  }

  /** The slug of `urn:assay:problem:<slug>`. */
  get slug(): string {
    return this.problem.type.replace(/^urn:assay:problem:/, '');
  }
}

export function isProblem(value: unknown): value is Problem {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    typeof (value as { status?: unknown }).status === 'number'
  );
}

/** A problem from whatever an API call rejected with (network failures included). */
export function toProblem(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  if (isProblem(error)) return error;
  return { type: 'urn:assay:problem:network', title: 'Network error', status: 0 };
}

/**
 * Field errors keyed by the form's own field names. Server paths look like
 * `body.new_password`, `body.record.amount` or `records.0.amount`; the last segment is
 * the field. Errors without a field (or a field the form does not have) are returned
 * under `_form`.
 */
export function fieldErrors(
  problem: Problem | undefined,
  known: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of problem?.errors ?? []) {
    const parts = (entry.field ?? '').split('.');
    const name = parts[parts.length - 1] ?? '';
    const key = known.includes(name) ? name : '_form';
    out[key] = out[key] ? `${out[key]} ${entry.message}` : entry.message;
  }
  return out;
}
