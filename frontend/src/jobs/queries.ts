import { api, call, csrfFetch, type Schemas } from '../api/client';
import { ApiError, isProblem } from '../api/problem';

export type JobView = Schemas['JobView'];
export type Progress = Schemas['Progress'];

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export const jobQuery = (id: string) => ({
  queryKey: ['jobs', 'one', id] as const,
  queryFn: () => call(api.GET('/v1/jobs/{job_id}', { params: { path: { job_id: id } } })),
});

/** The model a batch-scoring job uses (its params name it). */
export function jobModel(job: JobView): string {
  const model = job.params.model;
  return typeof model === 'string' ? model : '—';
}

/** Where the result is downloaded, as CSV. */
export function resultUrl(id: string): string {
  return `/v1/jobs/${encodeURIComponent(id)}/result?format=csv`;
}

/**
 * Submit a CSV for batch scoring (multipart/form-data). Sent through the CSRF-aware
 * fetch directly: the browser must write the multipart boundary itself.
 */
export async function submitUpload(model: string, file: File): Promise<JobView> {
  const form = new FormData();
  form.set('model', model);
  form.set('format', 'csv');
  form.set('file', file, file.name || 'input.csv');
  let response: Response;
  try {
    response = await csrfFetch(
      new Request(new URL('/v1/jobs', location.origin), {
        method: 'POST',
        body: form,
        headers: { Accept: 'application/json, application/problem+json' },
      }),
    );
  } catch {
    throw new ApiError({ type: 'urn:assay:problem:network', title: 'Network error', status: 0 });
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    if (isProblem(body)) throw new ApiError(body);
    throw new ApiError({ type: 'about:blank', title: 'Error', status: response.status });
  }
  return body as JobView;
}
