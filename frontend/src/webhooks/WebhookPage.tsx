import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { api, call, type Schemas } from '../api/client';
import { toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { usePageTitle } from '../shell/usePageTitle';
import { ConfirmButton } from '../ui/ConfirmButton';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';
import { ShownSecret, WEBHOOKS } from './shared';

type Delivery = Schemas['DeliveryView'];
const UNDER_WAY = new Set(['pending', 'delivering', 'failed']);

function Attempts({ webhookId, delivery }: { webhookId: string; delivery: Delivery }) {
  const { t } = useTranslation();
  const format = useFormat();
  const detail = useQuery({
    queryKey: [...WEBHOOKS, webhookId, 'deliveries', delivery.id, delivery.updated_at],
    queryFn: () =>
      call(
        api.GET('/v1/webhooks/{webhook_id}/deliveries/{delivery_id}', {
          params: { path: { webhook_id: webhookId, delivery_id: delivery.id } },
        }),
      ),
  });
  const label = t('webhooks.attemptsOf', { type: delivery.event_type });
  return (
    <section aria-labelledby="attempts-heading">
      <h3 id="attempts-heading">{label}</h3>
      {detail.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {detail.isError ? <ProblemAlert problem={toProblem(detail.error)} /> : null}
      {detail.data && detail.data.attempts_log.length === 0 ? (
        <p>{t('webhooks.noAttempts')}</p>
      ) : null}
      {detail.data && detail.data.attempts_log.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={label}>
          <table className="data-table">
            <caption className="visually-hidden">{label}</caption>
            <thead>
              <tr>
                <th scope="col">{t('webhooks.time')}</th>
                <th scope="col">{t('webhooks.outcome')}</th>
                <th scope="col">{t('webhooks.responseCode')}</th>
                <th scope="col">{t('webhooks.latency')}</th>
                <th scope="col">{t('webhooks.response')}</th>
              </tr>
            </thead>
            <tbody>
              {detail.data.attempts_log.map((a) => (
                <tr key={a.attempted_at}>
                  <td>{format.dateTime(a.attempted_at)}</td>
                  <td>{a.outcome}</td>
                  <td>{a.status_code ?? '—'}</td>
                  <td>{a.latency_ms == null ? '—' : `${Math.round(a.latency_ms)} ms`}</td>
                  <td>
                    <code>{a.error ?? a.response_excerpt ?? ''}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function DeliveryLog({ webhookId, manage }: { webhookId: string; manage: boolean }) {
  const { t } = useTranslation();
  const format = useFormat();
  const queryClient = useQueryClient();
  const [selected, setSelected] = useState<string | null>(null);
  const deliveries = useQuery({
    queryKey: [...WEBHOOKS, webhookId, 'deliveries'],
    queryFn: () =>
      call(
        api.GET('/v1/webhooks/{webhook_id}/deliveries', {
          params: { path: { webhook_id: webhookId } },
        }),
      ),
    // Follow deliveries that are still under way.
    refetchInterval: (query) =>
      query.state.data?.items.some((d) => UNDER_WAY.has(d.state)) ? 1000 : false,
  });
  const resend = useMutation({
    mutationFn: (deliveryId: string) =>
      call(
        api.POST('/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend', {
          params: { path: { webhook_id: webhookId, delivery_id: deliveryId } },
        }),
      ),
    onSettled: () =>
      queryClient.invalidateQueries({ queryKey: [...WEBHOOKS, webhookId, 'deliveries'] }),
  });
  const items = deliveries.data?.items ?? [];
  const chosen = items.find((d) => d.id === selected);
  return (
    <section aria-labelledby="deliveries-heading">
      <h2 id="deliveries-heading">{t('webhooks.deliveries')}</h2>
      {deliveries.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {deliveries.isError ? <ProblemAlert problem={toProblem(deliveries.error)} /> : null}
      {resend.isError ? <ProblemAlert problem={toProblem(resend.error)} /> : null}
      {deliveries.isSuccess && items.length === 0 ? <p>{t('webhooks.noDeliveries')}</p> : null}
      {items.length > 0 ? (
        <div
          className="table-scroll"
          tabIndex={0}
          role="region"
          aria-label={t('webhooks.deliveries')}
        >
          <table className="data-table">
            <caption className="visually-hidden">{t('webhooks.deliveries')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('webhooks.eventType')}</th>
                <th scope="col">{t('webhooks.state')}</th>
                <th scope="col">{t('webhooks.attempts')}</th>
                <th scope="col">{t('webhooks.responseCode')}</th>
                <th scope="col">{t('webhooks.time')}</th>
                <th scope="col">{t('webhooks.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <th scope="row">{d.event_type}</th>
                  <td>{t(`webhooks.states.${d.state}`, { defaultValue: d.state })}</td>
                  <td>{d.attempts}</td>
                  <td>{d.last_status_code ?? '—'}</td>
                  <td>{format.dateTime(d.created_at)}</td>
                  <td>
                    <span className="actions">
                      <button
                        type="button"
                        className="button button-secondary"
                        aria-pressed={d.id === selected}
                        onClick={() => setSelected(d.id === selected ? null : d.id)}
                      >
                        {t('webhooks.showAttempts')}
                      </button>
                      {manage ? (
                        <button
                          type="button"
                          className="button button-secondary"
                          disabled={resend.isPending || d.state === 'delivering'}
                          onClick={() => resend.mutate(d.id)}
                        >
                          {t('webhooks.redeliver')}
                        </button>
                      ) : null}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {chosen ? <Attempts webhookId={webhookId} delivery={chosen} /> : null}
    </section>
  );
}

export function WebhookPage() {
  const { t } = useTranslation();
  const { id = '' } = useParams();
  const { can } = useSession();
  const format = useFormat();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const manage = can('webhooks:manage');
  usePageTitle(t('webhooks.detailTitle'));
  const [secret, setSecret] = useState<Schemas['WebhookSecretIssued'] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // Set once deleted: its queries stop (navigation is a transition, the page stays a moment).
  const [gone, setGone] = useState(false);
  const path = { params: { path: { webhook_id: id } } };
  const hook = useQuery({
    queryKey: [...WEBHOOKS, id],
    queryFn: () => call(api.GET('/v1/webhooks/{webhook_id}', path)),
    enabled: !gone,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: WEBHOOKS });
  const toggle = useMutation({
    mutationFn: (enabled: boolean) =>
      call(api.PATCH('/v1/webhooks/{webhook_id}', { ...path, body: { enabled } })),
    onSuccess: (updated) =>
      setNotice(updated.enabled ? t('webhooks.nowEnabled') : t('webhooks.nowDisabled')),
    onSettled: refresh,
  });
  const test = useMutation({
    mutationFn: () => call(api.POST('/v1/webhooks/{webhook_id}/test', path)),
    onSuccess: () => setNotice(t('webhooks.testSent')),
    onSettled: refresh,
  });
  const rotate = useMutation({
    mutationFn: () => call(api.POST('/v1/webhooks/{webhook_id}/rotate-secret', path)),
    onSuccess: setSecret,
  });
  const remove = useMutation({
    mutationFn: () => call(api.DELETE('/v1/webhooks/{webhook_id}', path)),
    onSuccess: () => {
      // Stop the endpoint's own queries first: asked again, they would answer 404.
      setGone(true);
      void queryClient.cancelQueries({ queryKey: [...WEBHOOKS, id] });
      void queryClient.invalidateQueries({ queryKey: WEBHOOKS, exact: true });
      navigate('/webhooks');
    },
  });
  const data = gone ? undefined : hook.data;
  const failed = [toggle, test, rotate, remove].find((m) => m.isError);

  return (
    <div className="page">
      <p>
        <Link to="/webhooks">{t('webhooks.all')}</Link>
      </p>
      <h1>{t('webhooks.detailTitle')}</h1>
      {hook.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {hook.isError ? <ProblemAlert problem={toProblem(hook.error)} /> : null}
      {data ? (
        <>
          <dl className="details">
            <dt>{t('webhooks.url')}</dt>
            <dd>
              <code>{data.url}</code>
            </dd>
            <dt>{t('webhooks.description')}</dt>
            <dd>{data.description || '—'}</dd>
            <dt>{t('webhooks.eventTypes')}</dt>
            <dd>{data.event_types.join(', ')}</dd>
            <dt>{t('webhooks.status')}</dt>
            <dd>
              {data.enabled ? t('webhooks.enabled') : t('webhooks.disabled')}
              {data.disabled_reason ? ` (${data.disabled_reason})` : ''}
            </dd>
            <dt>{t('webhooks.failures')}</dt>
            <dd>{data.failure_streak}</dd>
            <dt>{t('webhooks.created')}</dt>
            <dd>{format.dateTime(data.created_at)}</dd>
          </dl>
          {notice ? <Notice>{notice}</Notice> : null}
          {failed ? <ProblemAlert problem={toProblem(failed.error)} /> : null}
          {secret ? (
            <ShownSecret
              secret={secret.secret}
              title={t('webhooks.rotatedTitle')}
              note={
                secret.previous_secret_expires_at
                  ? t('webhooks.previousUntil', {
                      when: format.dateTime(secret.previous_secret_expires_at),
                    })
                  : undefined
              }
              onDone={() => setSecret(null)}
            />
          ) : null}
          {manage ? (
            <div className="actions">
              <button
                type="button"
                className="button button-secondary"
                disabled={toggle.isPending}
                onClick={() => {
                  setNotice(null);
                  toggle.mutate(!data.enabled);
                }}
              >
                {data.enabled ? t('webhooks.disable') : t('webhooks.enable')}
              </button>
              <button
                type="button"
                className="button button-secondary"
                disabled={test.isPending || !data.enabled}
                onClick={() => {
                  setNotice(null);
                  test.mutate();
                }}
              >
                {t('webhooks.sendTest')}
              </button>
              <ConfirmButton
                label={t('webhooks.rotate')}
                title={t('webhooks.rotateTitle')}
                body={t('webhooks.rotateBody')}
                confirmLabel={t('webhooks.rotateConfirm')}
                backLabel={t('webhooks.back')}
                disabled={rotate.isPending}
                onConfirm={() => rotate.mutateAsync().catch(() => undefined)}
              />
              <ConfirmButton
                label={t('webhooks.delete')}
                title={t('webhooks.deleteTitle')}
                body={t('webhooks.deleteBody', { url: data.url })}
                confirmLabel={t('webhooks.deleteConfirm')}
                backLabel={t('webhooks.back')}
                disabled={remove.isPending}
                onConfirm={() => remove.mutateAsync().catch(() => undefined)}
              />
            </div>
          ) : (
            <p className="muted">{t('webhooks.readOnly')}</p>
          )}
          <DeliveryLog webhookId={id} manage={manage} />
        </>
      ) : null}
    </div>
  );
}
