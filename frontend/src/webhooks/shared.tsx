import { useEffect, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import { CopyButton } from '../keys/ApiKeysPage';

export const WEBHOOKS = ['webhooks'] as const;

/** A signing secret, shown this once: it lives in the caller's state only, never cached. */
export function ShownSecret({
  secret,
  title,
  note,
  onDone,
}: {
  secret: string;
  title: string;
  note?: string | undefined;
  onDone: () => void;
}) {
  const { t } = useTranslation();
  const heading = useRef<HTMLHeadingElement>(null);
  // The control it replaces had the focus: bring it to what must be read now.
  useEffect(() => heading.current?.focus(), []);
  return (
    <section className="alert alert-warning" aria-labelledby="webhook-secret-heading">
      <h2 id="webhook-secret-heading" ref={heading} tabIndex={-1}>
        {title}
      </h2>
      <p>
        <strong>{t('webhooks.onceWarning')}</strong>
      </p>
      {note ? <p>{note}</p> : null}
      <dl className="secrets">
        <dt>{t('webhooks.secret')}</dt>
        <dd>
          <code className="secret">{secret}</code>
          <CopyButton text={secret} label={t('webhooks.copySecret')} />
        </dd>
      </dl>
      <p>
        <button type="button" className="button" onClick={onDone}>
          {t('webhooks.done')}
        </button>
      </p>
    </section>
  );
}
