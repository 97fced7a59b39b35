import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { api, call, type Schemas } from '../api/client';
import { fieldErrors, toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { usePageTitle } from '../shell/usePageTitle';
import { Field } from '../ui/Field';
import { ProblemAlert } from '../ui/ProblemAlert';
import { ShownSecret, WEBHOOKS } from './shared';

type Created = Schemas['WebhookCreated'];

function NewWebhookForm({ onCreated }: { onCreated: (created: Created) => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<string[]>([]);
  const [tried, setTried] = useState(false);
  const eventsErrorId = useId();
  const types = useQuery({
    queryKey: [...WEBHOOKS, 'event-types'],
    queryFn: () => call(api.GET('/v1/webhooks/event-types')),
    staleTime: 300_000,
  });
  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST('/v1/webhooks', {
          body: {
            url: url.trim(),
            event_types: events,
            description: description.trim(),
            enabled: true,
          },
        }),
      ),
    onSuccess: (created) => {
      setUrl('');
      setDescription('');
      setEvents([]);
      setTried(false);
      void queryClient.invalidateQueries({ queryKey: WEBHOOKS });
      onCreated(created);
    },
  });
  const problem = create.isError ? toProblem(create.error) : undefined;
  const errors = fieldErrors(problem, ['url', 'event_types', 'description']);
  const urlError = errors.url ?? (tried && !url.trim() ? t('errors.required') : undefined);
  const eventsError =
    errors.event_types ?? (tried && events.length === 0 ? t('webhooks.eventsRequired') : undefined);

  return (
    <section aria-labelledby="new-webhook-heading">
      <h2 id="new-webhook-heading">{t('webhooks.newWebhook')}</h2>
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          setTried(true);
          if (!url.trim() || events.length === 0) return;
          create.mutate();
        }}
      >
        <Field
          label={t('webhooks.url')}
          name="url"
          value={url}
          onChange={setUrl}
          isRequired
          description={t('webhooks.urlHelp')}
          error={urlError}
        />
        <Field
          label={t('webhooks.description')}
          name="description"
          value={description}
          onChange={setDescription}
          error={errors.description}
        />
        <fieldset
          className="checkbox-list"
          aria-describedby={eventsError ? eventsErrorId : undefined}
        >
          <legend>{t('webhooks.eventTypes')}</legend>
          {types.isPending ? <p role="status">{t('app.loading')}</p> : null}
          {types.isError ? <ProblemAlert problem={toProblem(types.error)} /> : null}
          {(types.data ?? []).map((type) => (
            <label key={type.name} title={type.description}>
              <input
                type="checkbox"
                checked={events.includes(type.name)}
                onChange={(e) =>
                  setEvents(
                    e.target.checked
                      ? [...events, type.name]
                      : events.filter((s) => s !== type.name),
                  )
                }
              />
              {type.name}
            </label>
          ))}
          {eventsError ? (
            <p id={eventsErrorId} className="field-error">
              {eventsError}
            </p>
          ) : null}
        </fieldset>
        {problem && !errors.url && !errors.event_types && !errors.description ? (
          <ProblemAlert problem={problem} />
        ) : null}
        {errors._form ? (
          <p className="field-error" role="alert">
            {errors._form}
          </p>
        ) : null}
        <Button type="submit" className="button" isDisabled={create.isPending}>
          {create.isPending ? t('webhooks.creating') : t('webhooks.create')}
        </Button>
      </Form>
    </section>
  );
}

export function WebhooksPage() {
  const { t } = useTranslation();
  const { can } = useSession();
  usePageTitle(t('webhooks.title'));
  const [created, setCreated] = useState<Created | null>(null);
  const hooks = useQuery({
    queryKey: WEBHOOKS,
    queryFn: () => call(api.GET('/v1/webhooks')),
  });
  const items = hooks.data ?? [];
  const manage = can('webhooks:manage');

  return (
    <div className="page">
      <h1>{t('webhooks.title')}</h1>
      {!manage ? <p className="muted">{t('webhooks.readOnly')}</p> : null}
      {manage && created ? (
        <ShownSecret
          secret={created.secret}
          title={t('webhooks.createdTitle', { url: created.url })}
          onDone={() => setCreated(null)}
        />
      ) : null}
      {manage && !created ? <NewWebhookForm onCreated={setCreated} /> : null}
      <h2>{t('webhooks.listTitle')}</h2>
      {hooks.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {hooks.isError ? <ProblemAlert problem={toProblem(hooks.error)} /> : null}
      {hooks.isSuccess && items.length === 0 ? <p>{t('webhooks.empty')}</p> : null}
      {items.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={t('webhooks.title')}>
          <table className="data-table">
            <caption className="visually-hidden">{t('webhooks.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('webhooks.url')}</th>
                <th scope="col">{t('webhooks.eventTypes')}</th>
                <th scope="col">{t('webhooks.status')}</th>
                <th scope="col">{t('webhooks.failures')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((hook) => (
                <tr key={hook.id}>
                  <th scope="row">
                    <Link to={`/webhooks/${hook.id}`}>{hook.url}</Link>
                    {hook.description ? (
                      <div className="muted small">{hook.description}</div>
                    ) : null}
                  </th>
                  <td>{hook.event_types.join(', ')}</td>
                  <td>{hook.enabled ? t('webhooks.enabled') : t('webhooks.disabled')}</td>
                  <td>{hook.failure_streak}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
