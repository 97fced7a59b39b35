import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link, useSearchParams } from 'react-router-dom';
import { api, call } from '../api/client';
import { toProblem } from '../api/problem';
import { useFormat } from '../i18n/format';
import { modelsQuery } from '../models/queries';
import { usePageTitle } from '../shell/usePageTitle';
import { ProblemAlert } from '../ui/ProblemAlert';

export interface PredictionFilters {
  model: string;
  label: string;
  since: string; // yyyy-mm-dd, local day
  until: string; // yyyy-mm-dd, local day, inclusive in the form
}

/** The API's query: local days become RFC 3339 instants; `until` covers its whole day. */
export function filtersToQuery(filters: PredictionFilters) {
  const query: { model?: string; label?: string; since?: string; until?: string } = {};
  if (filters.model) query.model = filters.model;
  if (filters.label.trim()) query.label = filters.label.trim();
  if (filters.since) query.since = new Date(`${filters.since}T00:00:00`).toISOString();
  if (filters.until) {
    const end = new Date(`${filters.until}T00:00:00`);
    end.setDate(end.getDate() + 1);
    query.until = end.toISOString();
  }
  return query;
}

function readFilters(params: URLSearchParams): PredictionFilters {
  return {
    model: params.get('model') ?? '',
    label: params.get('label') ?? '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
  };
}

function FilterInput({
  label,
  type,
  value,
  onChange,
}: {
  label: string;
  type: 'text' | 'date';
  value: string;
  onChange: (value: string) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} type={type} value={value} onChange={(e) => onChange(e.target.value)} />
    </div>
  );
}

export function PredictionsPage() {
  const { t } = useTranslation();
  const format = useFormat();
  const modelId = useId();
  usePageTitle(t('predictions.title'));
  const [params, setParams] = useSearchParams();
  const applied = readFilters(params);
  const [draft, setDraft] = useState<PredictionFilters>(applied);
  const models = useQuery(modelsQuery());
  const query = filtersToQuery(applied);

  const pages = useInfiniteQuery({
    queryKey: ['predictions', query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET('/v1/predictions', {
          params: { query: { ...query, limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = pages.data?.pages.flatMap((page) => page.items) ?? [];

  return (
    <div className="page">
      <h1>{t('predictions.title')}</h1>
      <section aria-labelledby="filters-heading">
        <h2 id="filters-heading" className="visually-hidden">
          {t('predictions.filters')}
        </h2>
        <Form
          validationBehavior="aria"
          className="filters"
          onSubmit={(event) => {
            event.preventDefault();
            const next = new URLSearchParams();
            for (const [key, value] of Object.entries(draft)) if (value) next.set(key, value);
            setParams(next);
          }}
        >
          <div className="field">
            <label htmlFor={modelId}>{t('predictions.model')}</label>
            <select
              id={modelId}
              value={draft.model}
              onChange={(e) => setDraft({ ...draft, model: e.target.value })}
            >
              <option value="">{t('predictions.anyModel')}</option>
              {(models.data ?? []).map((m) => (
                <option key={m.id} value={m.name}>
                  {m.name}
                </option>
              ))}
            </select>
          </div>
          <FilterInput
            label={t('predictions.label')}
            type="text"
            value={draft.label}
            onChange={(label) => setDraft({ ...draft, label })}
          />
          <FilterInput
            label={t('predictions.since')}
            type="date"
            value={draft.since}
            onChange={(since) => setDraft({ ...draft, since })}
          />
          <FilterInput
            label={t('predictions.until')}
            type="date"
            value={draft.until}
            onChange={(until) => setDraft({ ...draft, until })}
          />
          <Button type="submit" className="button">
            {t('predictions.apply')}
          </Button>
        </Form>
      </section>
      {pages.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {pages.isError ? <ProblemAlert problem={toProblem(pages.error)} /> : null}
      {pages.isSuccess && items.length === 0 ? <p role="status">{t('predictions.empty')}</p> : null}
      {items.length > 0 ? (
        <div
          className="table-scroll"
          tabIndex={0}
          role="region"
          aria-label={t('predictions.title')}
        >
          <table className="data-table">
            <caption className="visually-hidden">{t('predictions.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('predictions.when')}</th>
                <th scope="col">{t('predictions.model')}</th>
                <th scope="col">{t('predictions.score')}</th>
                <th scope="col">{t('predictions.label')}</th>
                <th scope="col">{t('predictions.risk')}</th>
                <th scope="col">{t('predictions.latency')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.id}>
                  <th scope="row">{format.dateTime(item.created_at)}</th>
                  <td>
                    <Link to={`/models/${encodeURIComponent(item.model_name)}`}>
                      {item.model_name}
                    </Link>{' '}
                    v{item.version}
                  </td>
                  <td className="num">{format.number(item.score)}</td>
                  <td>{item.label ?? '—'}</td>
                  <td>{item.risk ?? '—'}</td>
                  <td className="num">
                    {t('predictions.latencyMs', { ms: format.number(item.latency_ms, 1) })}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {pages.hasNextPage ? (
        <Button
          className="button button-secondary"
          onPress={() => void pages.fetchNextPage()}
          isDisabled={pages.isFetchingNextPage}
        >
          {t('predictions.more')}
        </Button>
      ) : null}
    </div>
  );
}
