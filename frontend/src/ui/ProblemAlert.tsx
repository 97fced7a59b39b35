import { useTranslation } from 'react-i18next';
import type { Problem } from '../api/problem';

/** Shows a problem's `detail` (or a translated fallback) as an alert. */
export function ProblemAlert({ problem }: { problem: Problem | null | undefined }) {
  const { t } = useTranslation();
  if (!problem) return null;
  const text =
    problem.status === 0
      ? t('errors.network')
      : (problem.detail ?? t('errors.generic', { status: problem.status }));
  return (
    <div className="alert alert-error" role="alert">
      <p>{text}</p>
      {problem.request_id ? (
        <p className="muted small">{t('errors.requestId', { id: problem.request_id })}</p>
      ) : null}
    </div>
  );
}

export function Notice({ children }: { children: React.ReactNode }) {
  return (
    <div className="alert alert-info" role="status">
      {children}
    </div>
  );
}
