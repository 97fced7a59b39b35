import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router-dom';
import { toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { modelsQuery } from '../models/queries';
import { usePageTitle } from '../shell/usePageTitle';
import { ProblemAlert } from '../ui/ProblemAlert';
import { useStateName } from './JobProgress';
import { api, call } from '../api/client';
import { jobModel, submitUpload, TERMINAL } from './queries';

function NewJobForm() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const models = useQuery(modelsQuery());
  const modelId = useId();
  const fileId = useId();
  const fileHelpId = useId();
  const [model, setModel] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [missing, setMissing] = useState(false);
  const submit = useMutation({
    mutationFn: () => submitUpload(model, file as File),
    onSuccess: async (job) => {
      await queryClient.invalidateQueries({ queryKey: ['jobs'] });
      navigate(`/jobs/${job.id}`);
    },
  });
  const modelMissing = missing && !model;
  const fileMissing = missing && !file;

  return (
    <section aria-labelledby="new-job-heading">
      <h2 id="new-job-heading">{t('jobs.newJob')}</h2>
      <p className="muted">{t('jobs.newJobIntro')}</p>
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          if (!model || !file) {
            setMissing(true);
            return;
          }
          setMissing(false);
          submit.mutate();
        }}
      >
        <div className="field">
          <label htmlFor={modelId}>{t('jobs.model')}</label>
          <select
            id={modelId}
            value={model}
            required
            aria-invalid={modelMissing || undefined}
            aria-describedby={modelMissing ? `${modelId}-error` : undefined}
            onChange={(e) => setModel(e.target.value)}
          >
            <option value="">{t('jobs.chooseModel')}</option>
            {(models.data ?? []).map((m) => (
              <option key={m.id} value={m.name}>
                {m.name}
              </option>
            ))}
          </select>
          {modelMissing ? (
            <span id={`${modelId}-error`} className="field-error">
              {t('jobs.modelRequired')}
            </span>
          ) : null}
        </div>
        <div className="field">
          <label htmlFor={fileId}>{t('jobs.file')}</label>
          <input
            id={fileId}
            type="file"
            accept=".csv,text/csv"
            required
            aria-invalid={fileMissing || undefined}
            aria-describedby={fileMissing ? `${fileHelpId} ${fileId}-error` : fileHelpId}
            onChange={(e) => setFile(e.target.files?.[0] ?? null)}
          />
          <span id={fileHelpId} className="muted small">
            {t('jobs.fileHelp')}
          </span>
          {fileMissing ? (
            <span id={`${fileId}-error`} className="field-error">
              {t('jobs.fileRequired')}
            </span>
          ) : null}
        </div>
        {submit.isError ? <ProblemAlert problem={toProblem(submit.error)} /> : null}
        <Button type="submit" className="button" isDisabled={submit.isPending}>
          {submit.isPending ? t('jobs.submitting') : t('jobs.submit')}
        </Button>
      </Form>
    </section>
  );
}

export function JobsPage() {
  const { t } = useTranslation();
  const format = useFormat();
  const stateName = useStateName();
  const { can } = useSession();
  usePageTitle(t('jobs.title'));
  const jobs = useInfiniteQuery({
    queryKey: ['jobs', 'list'],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET('/v1/jobs', {
          params: { query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // While a job is still going, the list keeps its states and progress fresh.
    refetchInterval: (query) =>
      query.state.data?.pages.some((page) => page.items.some((j) => !TERMINAL.has(j.state)))
        ? 5_000
        : false,
  });
  const items = jobs.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <div className="page">
      <h1>{t('jobs.title')}</h1>
      {can('jobs:write') ? (
        <NewJobForm />
      ) : (
        <p className="muted" id="new-job-reason">
          {t('jobs.writeDisabled')}
        </p>
      )}
      <h2>{t('jobs.recent')}</h2>
      {jobs.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {jobs.isError ? <ProblemAlert problem={toProblem(jobs.error)} /> : null}
      {jobs.isSuccess && items.length === 0 ? <p>{t('jobs.empty')}</p> : null}
      {items.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={t('jobs.title')}>
          <table className="data-table">
            <caption className="visually-hidden">{t('jobs.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('jobs.submitted')}</th>
                <th scope="col">{t('jobs.kind')}</th>
                <th scope="col">{t('jobs.model')}</th>
                <th scope="col">{t('jobs.state')}</th>
                <th scope="col">{t('jobs.progress')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((job) => (
                <tr key={job.id}>
                  <th scope="row">
                    <Link to={`/jobs/${job.id}`}>{format.dateTime(job.created_at)}</Link>
                  </th>
                  <td>{job.kind}</td>
                  <td>{jobModel(job)}</td>
                  <td>{stateName(job.state)}</td>
                  <td className="num">
                    {t('jobs.progressShort', {
                      done: format.number(job.progress.done, 0),
                      total: format.number(job.progress.total, 0),
                    })}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {jobs.hasNextPage ? (
        <Button
          className="button button-secondary"
          onPress={() => void jobs.fetchNextPage()}
          isDisabled={jobs.isFetchingNextPage}
        >
          {t('jobs.more')}
        </Button>
      ) : null}
    </div>
  );
}
