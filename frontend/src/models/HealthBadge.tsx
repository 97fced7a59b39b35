import { useTranslation } from 'react-i18next';

export function HealthBadge({
  status,
  reason,
}: {
  status: string | undefined;
  reason?: string | null;
}) {
  const { t } = useTranslation();
  const kind = status === 'healthy' ? 'healthy' : status === 'unhealthy' ? 'unhealthy' : 'unknown';
  const text = t(`models.${kind}`);
  return (
    <span className={`badge badge-${kind}`} title={reason ?? undefined}>
      {text}
      {reason ? <span className="visually-hidden">: {reason}</span> : null}
    </span>
  );
}
