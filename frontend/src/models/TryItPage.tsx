import { useMutation, useQuery } from '@tanstack/react-query';
import { useMemo, useRef, useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, Navigate, useParams } from 'react-router-dom';
import { api, call } from '../api/client';
import { ApiError, fieldErrors, toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { usePageTitle } from '../shell/usePageTitle';
import { ProblemAlert } from '../ui/ProblemAlert';
import { PredictionResult } from './PredictionResult';
import { inputFields, parseInputSchema, type FieldValue } from './inputSchema';
import { modelQuery } from './queries';
import { SchemaForm } from './SchemaForm';

const NO_ERRORS: Record<string, string> = {};

export default function TryItPage() {
  const { name = '' } = useParams();
  const { t } = useTranslation();
  const { can } = useSession();
  usePageTitle(t('tryit.title', { name }));
  const model = useQuery(modelQuery(name));
  const schema = parseInputSchema(model.data?.input_schema);
  const fields = useMemo(() => (schema ? inputFields(schema) : []), [schema]);
  const resultRef = useRef<HTMLElement>(null);

  const predict = useMutation({
    mutationFn: (record: Record<string, FieldValue>) =>
      call(
        api.POST('/v1/models/{name}/predict', {
          params: { path: { name } },
          body: { record },
        }),
      ),
  });

  useEffect(() => {
    if (predict.data) resultRef.current?.focus();
  }, [predict.data]);

  const names = useMemo(() => fields.map((f) => f.name), [fields]);
  const serverErrors = useMemo(
    () =>
      predict.error instanceof ApiError && predict.error.status === 422
        ? fieldErrors(predict.error.problem, names)
        : NO_ERRORS,
    [predict.error, names],
  );

  if (!can('predict')) return <Navigate to={`/models/${encodeURIComponent(name)}`} replace />;

  return (
    <div className="page">
      <p>
        <Link to={`/models/${encodeURIComponent(name)}`}>
          <span aria-hidden="true">← </span>
          {t('models.detailTitle', { name })}
        </Link>
      </p>
      <h1>{t('tryit.title', { name })}</h1>
      <p>{t('tryit.intro')}</p>
      {model.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {model.isError ? <ProblemAlert problem={toProblem(model.error)} /> : null}
      {model.data && !schema ? <p>{t('models.noSchema')}</p> : null}
      <div className="try-it">
        {schema ? (
          <section aria-label={t('tryit.title', { name })} className="try-it-form">
            {predict.isError ? <ProblemAlert problem={toProblem(predict.error)} /> : null}
            <SchemaForm
              key={name}
              fields={fields}
              onSubmit={(record) => predict.mutate(record)}
              serverErrors={serverErrors}
              isSubmitting={predict.isPending}
              submitLabel={t('tryit.score')}
            />
          </section>
        ) : null}
        {predict.data ? (
          <section
            ref={resultRef}
            tabIndex={-1}
            aria-labelledby="result-heading"
            className="try-it-result"
          >
            <h2 id="result-heading">{t('tryit.result')}</h2>
            <PredictionResult answer={predict.data} />
          </section>
        ) : null}
      </div>
    </div>
  );
}
