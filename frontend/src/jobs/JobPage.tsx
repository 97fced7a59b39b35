import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router-dom';
import { api, call } from '../api/client';
import { toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { usePageTitle } from '../shell/usePageTitle';
import { ConfirmButton } from '../ui/ConfirmButton';
import { ProblemAlert } from '../ui/ProblemAlert';
import { JobProgress } from './JobProgress';
import { jobModel, jobQuery, resultUrl, TERMINAL } from './queries';
import { useJobEvents } from './useJobEvents';

export function JobPage() {
  const { t } = useTranslation();
  const format = useFormat();
  const { can } = useSession();
  const { id = '' } = useParams();
  const queryClient = useQueryClient();
  usePageTitle(t('jobs.jobTitle'));
  const job = useQuery(jobQuery(id));
  const initiallyOpen = Boolean(job.data && !TERMINAL.has(job.data.state));
  const reread = useCallback(() => {
    void queryClient.invalidateQueries({ queryKey: ['jobs'] });
  }, [queryClient]);
  const { latest, connection } = useJobEvents(id, initiallyOpen, reread);
  // Without the stream (refused, or the browser gave up), the job is re-read instead.
  const polling = connection === 'failed' && Boolean(job.data && !TERMINAL.has(job.data.state));
  useQuery({ ...jobQuery(id), enabled: polling, refetchInterval: polling ? 2_000 : false });

  const cancel = useMutation({
    mutationFn: () =>
      call(api.POST('/v1/jobs/{job_id}/cancel', { params: { path: { job_id: id } } })),
    onSuccess: (view) => {
      queryClient.setQueryData(jobQuery(id).queryKey, view);
      void queryClient.invalidateQueries({ queryKey: ['jobs', 'list'] });
    },
  });

  const data = job.data;
  // The stream is newer than the last read, until the job is read again at its end.
  const state = data && TERMINAL.has(data.state) ? data.state : (latest?.state ?? data?.state);
  const progress =
    data && TERMINAL.has(data.state) ? data.progress : (latest?.progress ?? data?.progress);
  const cancelRequested = Boolean(latest?.cancel_requested ?? data?.cancel_requested);
  const ended = Boolean(state && TERMINAL.has(state));

  return (
    <div className="page">
      <p>
        <Link to="/jobs">{t('jobs.all')}</Link>
      </p>
      <h1>{t('jobs.jobTitle')}</h1>
      {job.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {job.isError ? <ProblemAlert problem={toProblem(job.error)} /> : null}
      {data && state && progress ? (
        <>
          <dl className="facts">
            <div>
              <dt>{t('jobs.id')}</dt>
              <dd className="digest">{data.id}</dd>
            </div>
            <div>
              <dt>{t('jobs.model')}</dt>
              <dd>{jobModel(data)}</dd>
            </div>
            <div>
              <dt>{t('jobs.submitted')}</dt>
              <dd>{format.dateTime(data.created_at)}</dd>
            </div>
            {data.finished_at ? (
              <div>
                <dt>{t('jobs.finished')}</dt>
                <dd>{format.dateTime(data.finished_at)}</dd>
              </div>
            ) : null}
          </dl>
          <h2>{t('jobs.progress')}</h2>
          <JobProgress
            state={state}
            progress={progress}
            cancelRequested={cancelRequested}
            connection={ended ? null : connection}
          />
          {data.error ? (
            <div className="alert alert-error" role="alert">
              <p>{data.error}</p>
            </div>
          ) : null}
          {cancel.isError ? <ProblemAlert problem={toProblem(cancel.error)} /> : null}
          <div className="actions">
            {ended && data.state === state ? (
              <>
                <a className="button" href={resultUrl(data.id)} download={`job-${data.id}.csv`}>
                  {t('jobs.download')}
                </a>
                {data.partial ? <span className="muted">{t('jobs.partial')}</span> : null}
              </>
            ) : null}
            {!ended && can('jobs:write') ? (
              <ConfirmButton
                label={t('jobs.cancel')}
                title={t('jobs.cancelTitle')}
                body={t('jobs.cancelBody')}
                confirmLabel={t('jobs.cancelConfirm')}
                backLabel={t('jobs.cancelBack')}
                disabled={cancelRequested || cancel.isPending}
                onConfirm={() => cancel.mutateAsync().catch(() => undefined)}
              />
            ) : null}
            {!ended && !can('jobs:write') ? (
              <span className="muted small">{t('jobs.cancelDisabled')}</span>
            ) : null}
          </div>
        </>
      ) : null}
    </div>
  );
}
