import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router-dom';
import { toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { usePageTitle } from '../shell/usePageTitle';
import { ProblemAlert } from '../ui/ProblemAlert';
import { HealthBadge } from './HealthBadge';
import { isRequired, parseInputSchema, type FieldSpec } from './inputSchema';
import { modelQuery } from './queries';

function Constraints({ field }: { field: FieldSpec }) {
  const { t } = useTranslation();
  const format = useFormat();
  const parts: string[] = [];
  const { minimum: min, maximum: max } = field;
  if (min != null && max != null)
    parts.push(t('models.range', { min: format.number(min, 6), max: format.number(max, 6) }));
  else if (min != null) parts.push(t('models.atLeast', { min: format.number(min, 6) }));
  else if (max != null) parts.push(t('models.atMost', { max: format.number(max, 6) }));
  if (field.enum?.length)
    parts.push(t('models.oneOf', { values: field.enum.map(String).join(', ') }));
  if (field.pattern) parts.push(field.pattern);
  return <>{parts.join('; ') || '—'}</>;
}

export function ModelDetailPage() {
  const { name = '' } = useParams();
  const { t } = useTranslation();
  const format = useFormat();
  const { can } = useSession();
  usePageTitle(t('models.detailTitle', { name }));
  const model = useQuery(modelQuery(name));
  const schema = parseInputSchema(model.data?.input_schema);
  const mayPredict = can('predict');

  return (
    <div className="page">
      <p>
        <Link to="/models">
          <span aria-hidden="true">← </span>
          {t('models.back')}
        </Link>
      </p>
      <h1>{t('models.detailTitle', { name })}</h1>
      {model.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {model.isError ? <ProblemAlert problem={toProblem(model.error)} /> : null}
      {model.data ? (
        <>
          <dl className="facts">
            <dt>{t('models.kind')}</dt>
            <dd>{model.data.kind}</dd>
            {model.data.description ? (
              <>
                <dt>{t('models.description')}</dt>
                <dd>{model.data.description}</dd>
              </>
            ) : null}
            <dt>{t('models.created')}</dt>
            <dd>{format.dateTime(model.data.created_at)}</dd>
            <dt>{t('models.aliases')}</dt>
            <dd>
              {Object.entries(model.data.aliases)
                .map(([alias, version]) => t('models.aliasTo', { alias, version }))
                .join(', ') || t('models.noAliases')}
            </dd>
          </dl>
          <div className="actions">
            {mayPredict ? (
              <Link className="button" to={`/models/${encodeURIComponent(name)}/try`}>
                {t('models.tryIt')}
              </Link>
            ) : (
              <>
                <button type="button" className="button" disabled aria-describedby="try-it-reason">
                  {t('models.tryIt')}
                </button>
                <span id="try-it-reason" className="muted small">
                  {t('models.tryItDisabled')}
                </span>
              </>
            )}
          </div>

          <h2>{t('models.versions')}</h2>
          <div
            className="table-scroll"
            tabIndex={0}
            role="region"
            aria-label={t('models.versions')}
          >
            <table className="data-table">
              <caption className="visually-hidden">{t('models.versions')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('models.version')}</th>
                  <th scope="col">{t('models.status')}</th>
                  <th scope="col">{t('models.created')}</th>
                  <th scope="col">{t('models.format')}</th>
                  <th scope="col">{t('models.digest')}</th>
                  <th scope="col">{t('models.signedBy')}</th>
                </tr>
              </thead>
              <tbody>
                {[...(model.data.versions ?? [])]
                  .sort((a, b) => b.version - a.version)
                  .map((v) => (
                    <tr key={v.version}>
                      <th scope="row">v{v.version}</th>
                      <td>
                        <HealthBadge status={v.status} reason={v.status_reason} />
                      </td>
                      <td>{format.dateTime(v.created_at)}</td>
                      <td>{v.artifact_format ?? '—'}</td>
                      <td>
                        <code className="digest">{v.content_digest}</code>
                        {v.artifact_digest ? (
                          <>
                            <br />
                            <span className="muted small">{t('models.artifactDigest')}: </span>
                            <code className="digest">{v.artifact_digest}</code>
                          </>
                        ) : null}
                      </td>
                      <td>{v.signed_by ?? t('models.unsigned')}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>

          <h2>{t('models.inputSchema')}</h2>
          {!schema ? (
            <p>{t('models.noSchema')}</p>
          ) : (
            <>
              {schema.description ? <p>{schema.description}</p> : null}
              <div
                className="table-scroll"
                tabIndex={0}
                role="region"
                aria-label={t('models.inputSchema')}
              >
                <table className="data-table">
                  <caption className="visually-hidden">{t('models.inputSchema')}</caption>
                  <thead>
                    <tr>
                      <th scope="col">{t('models.field')}</th>
                      <th scope="col">{t('models.type')}</th>
                      <th scope="col">{t('models.required')}</th>
                      <th scope="col">{t('models.constraints')}</th>
                      <th scope="col">{t('models.description')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {schema.fields.map((field) => (
                      <tr key={field.name}>
                        <th scope="row">
                          <code>{field.name}</code>
                        </th>
                        <td>
                          {field.type}
                          {field.unit ? ` (${field.unit})` : ''}
                        </td>
                        <td>{isRequired(field) ? t('models.yes') : t('models.no')}</td>
                        <td>
                          <Constraints field={field} />
                        </td>
                        <td>{field.description ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          )}
        </>
      ) : null}
    </div>
  );
}
