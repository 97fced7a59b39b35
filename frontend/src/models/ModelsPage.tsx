import { useQueries, useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { toProblem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { ProblemAlert } from '../ui/ProblemAlert';
import { HealthBadge } from './HealthBadge';
import { latestVersion, modelQuery, modelsQuery, servingVersion } from './queries';

export function ModelsPage() {
  const { t } = useTranslation();
  usePageTitle(t('models.title'));
  const models = useQuery(modelsQuery());
  // The list carries no versions: each model's detail gives its latest version and health.
  const details = useQueries({
    queries: (models.data ?? []).map((m) => ({ ...modelQuery(m.name), staleTime: 30_000 })),
  });

  return (
    <div className="page">
      <h1>{t('models.title')}</h1>
      {models.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {models.isError ? <ProblemAlert problem={toProblem(models.error)} /> : null}
      {models.data && models.data.length === 0 ? <p>{t('models.empty')}</p> : null}
      {models.data && models.data.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={t('models.title')}>
          <table className="data-table">
            <caption className="visually-hidden">{t('models.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('models.name')}</th>
                <th scope="col">{t('models.kind')}</th>
                <th scope="col">{t('models.aliases')}</th>
                <th scope="col">{t('models.latestVersion')}</th>
                <th scope="col">{t('models.health')}</th>
              </tr>
            </thead>
            <tbody>
              {models.data.map((model, index) => {
                const detail = details[index]?.data;
                const latest = detail ? latestVersion(detail) : undefined;
                const serving = detail ? servingVersion(detail) : undefined;
                const aliases = Object.entries(model.aliases);
                return (
                  <tr key={model.id}>
                    <th scope="row">
                      <Link to={`/models/${encodeURIComponent(model.name)}`}>{model.name}</Link>
                    </th>
                    <td>{model.kind}</td>
                    <td>
                      {aliases.length === 0
                        ? t('models.noAliases')
                        : aliases
                            .map(([alias, version]) => t('models.aliasTo', { alias, version }))
                            .join(', ')}
                    </td>
                    <td className="num">{latest ? `v${latest.version}` : '—'}</td>
                    <td>
                      <HealthBadge
                        status={serving?.status}
                        reason={serving?.status_reason ?? null}
                      />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
