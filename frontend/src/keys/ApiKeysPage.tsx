import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas } from '../api/client';
import { fieldErrors, toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { usePageTitle } from '../shell/usePageTitle';
import { ConfirmButton } from '../ui/ConfirmButton';
import { Field } from '../ui/Field';
import { ProblemAlert } from '../ui/ProblemAlert';

type Scope = Schemas['ApiKeyCreate']['scopes'][number];
type Created = Schemas['ApiKeyCreated'];

const KEYS = ['api-keys'] as const;

export function CopyButton({ text, label }: { text: string; label: string }) {
  const { t } = useTranslation();
  const [outcome, setOutcome] = useState<'copied' | 'failed' | null>(null);
  return (
    <span className="actions">
      <button
        type="button"
        className="button button-secondary"
        onClick={() => {
          navigator.clipboard.writeText(text).then(
            () => setOutcome('copied'),
            () => setOutcome('failed'),
          );
        }}
      >
        {label}
      </button>
      <span role="status" className="small">
        {outcome === 'copied' ? t('keys.copied') : outcome === 'failed' ? t('keys.copyFailed') : ''}
      </span>
    </span>
  );
}

/** The new key, shown this once: it lives in this component's state only, never cached. */
function CreatedKey({ created, onDone }: { created: Created; onDone: () => void }) {
  const { t } = useTranslation();
  const heading = useRef<HTMLHeadingElement>(null);
  // The form it replaces had the focus: bring it to what must be read now.
  useEffect(() => heading.current?.focus(), []);
  return (
    <section className="alert alert-warning" aria-labelledby="created-key-heading">
      <h2 id="created-key-heading" ref={heading} tabIndex={-1}>
        {t('keys.createdTitle')}
      </h2>
      <p>
        <strong>{t('keys.onceWarning')}</strong>
      </p>
      <dl className="secrets">
        <dt>{t('keys.key')}</dt>
        <dd>
          <code className="secret">{created.key}</code>
          <CopyButton text={created.key} label={t('keys.copyKey')} />
        </dd>
        {created.signing_secret ? (
          <>
            <dt>{t('keys.signingSecret')}</dt>
            <dd>
              <code className="secret">{created.signing_secret}</code>
              <CopyButton text={created.signing_secret} label={t('keys.copySecret')} />
            </dd>
          </>
        ) : null}
      </dl>
      <p>
        <button type="button" className="button" onClick={onDone}>
          {t('keys.done')}
        </button>
      </p>
    </section>
  );
}

function NewKeyForm({ onCreated }: { onCreated: (created: Created) => void }) {
  const { t } = useTranslation();
  const { me } = useSession();
  const queryClient = useQueryClient();
  const grantable = [...(me?.permissions ?? [])].sort() as Scope[];
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>([]);
  const [signing, setSigning] = useState(false);
  const [tried, setTried] = useState(false);
  const scopesHelpId = useId();
  const scopesErrorId = useId();
  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST('/v1/org/api-keys', {
          body: { name: name.trim(), scopes, signing_required: signing },
        }),
      ),
    onSuccess: (created) => {
      setName('');
      setScopes([]);
      setSigning(false);
      setTried(false);
      void queryClient.invalidateQueries({ queryKey: KEYS });
      onCreated(created);
    },
  });
  const problem = create.isError ? toProblem(create.error) : undefined;
  const errors = fieldErrors(problem, ['name', 'scopes']);
  const nameError = errors.name ?? (tried && !name.trim() ? t('errors.required') : undefined);
  const scopesError =
    errors.scopes ?? (tried && scopes.length === 0 ? t('keys.scopesRequired') : undefined);

  return (
    <section aria-labelledby="new-key-heading">
      <h2 id="new-key-heading">{t('keys.newKey')}</h2>
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          setTried(true);
          if (!name.trim() || scopes.length === 0) return;
          create.mutate();
        }}
      >
        <Field
          label={t('keys.name')}
          name="name"
          value={name}
          onChange={setName}
          isRequired
          error={nameError}
        />
        <fieldset
          className="checkbox-list"
          aria-describedby={scopesError ? `${scopesHelpId} ${scopesErrorId}` : scopesHelpId}
        >
          <legend>{t('keys.scopes')}</legend>
          <p id={scopesHelpId} className="muted small">
            {t('keys.scopesHelp')}
          </p>
          {grantable.map((scope) => (
            <label key={scope}>
              <input
                type="checkbox"
                checked={scopes.includes(scope)}
                onChange={(e) =>
                  setScopes(
                    e.target.checked ? [...scopes, scope] : scopes.filter((s) => s !== scope),
                  )
                }
              />
              {scope}
            </label>
          ))}
          {scopesError ? (
            <p id={scopesErrorId} className="field-error">
              {scopesError}
            </p>
          ) : null}
        </fieldset>
        <p>
          <label>
            <input
              type="checkbox"
              checked={signing}
              onChange={(e) => setSigning(e.target.checked)}
            />{' '}
            {t('keys.signing')}
          </label>
        </p>
        {problem && !errors.name && !errors.scopes ? <ProblemAlert problem={problem} /> : null}
        {errors._form ? (
          <p className="field-error" role="alert">
            {errors._form}
          </p>
        ) : null}
        <Button type="submit" className="button" isDisabled={create.isPending}>
          {create.isPending ? t('keys.creating') : t('keys.create')}
        </Button>
      </Form>
    </section>
  );
}

export function ApiKeysPage() {
  const { t } = useTranslation();
  const format = useFormat();
  const queryClient = useQueryClient();
  usePageTitle(t('keys.title'));
  const [created, setCreated] = useState<Created | null>(null);
  const keys = useQuery({
    queryKey: KEYS,
    queryFn: () => call(api.GET('/v1/org/api-keys')),
  });
  const revoke = useMutation({
    mutationFn: (id: string) =>
      call(api.DELETE('/v1/org/api-keys/{key_id}', { params: { path: { key_id: id } } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: KEYS }),
  });
  const items = keys.data ?? [];

  return (
    <div className="page">
      <h1>{t('keys.title')}</h1>
      {created ? (
        <CreatedKey created={created} onDone={() => setCreated(null)} />
      ) : (
        <NewKeyForm onCreated={setCreated} />
      )}
      <h2>{t('keys.listTitle')}</h2>
      {keys.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {keys.isError ? <ProblemAlert problem={toProblem(keys.error)} /> : null}
      {revoke.isError ? <ProblemAlert problem={toProblem(revoke.error)} /> : null}
      {keys.isSuccess && items.length === 0 ? <p>{t('keys.empty')}</p> : null}
      {items.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={t('keys.title')}>
          <table className="data-table">
            <caption className="visually-hidden">{t('keys.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('keys.name')}</th>
                <th scope="col">{t('keys.prefix')}</th>
                <th scope="col">{t('keys.scopes')}</th>
                <th scope="col">{t('keys.created')}</th>
                <th scope="col">{t('keys.lastUsed')}</th>
                <th scope="col">{t('keys.status')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((key) => (
                <tr key={key.id}>
                  <th scope="row">{key.name}</th>
                  <td>
                    <code>{key.key_id}</code>
                  </td>
                  <td>{key.scopes.join(', ')}</td>
                  <td>{format.dateTime(key.created_at)}</td>
                  <td>{key.last_used_at ? format.dateTime(key.last_used_at) : t('keys.never')}</td>
                  <td>
                    {key.revoked_at ? (
                      t('keys.revoked', { when: format.dateTime(key.revoked_at) })
                    ) : (
                      <span className="actions">
                        {t('keys.active')}
                        <ConfirmButton
                          label={t('keys.revoke')}
                          nameSuffix={key.name}
                          title={t('keys.revokeTitle')}
                          body={t('keys.revokeBody', { name: key.name })}
                          confirmLabel={t('keys.revokeConfirm')}
                          backLabel={t('keys.back')}
                          disabled={revoke.isPending}
                          onConfirm={() => revoke.mutateAsync(key.id).catch(() => undefined)}
                        />
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}
