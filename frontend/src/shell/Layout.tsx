import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { NavLink, Outlet, useNavigate } from 'react-router-dom';
import { Button } from 'react-aria-components';
import { api, call } from '../api/client';
import { useSession } from '../auth/session';
import { LocaleSwitch } from './LocaleSwitch';
import { OfflineNotice } from './OfflineNotice';

function SkipLink() {
  const { t } = useTranslation();
  return (
    <a className="skip-link" href="#main">
      {t('app.skipToContent')}
    </a>
  );
}

/** Pages for signed-in users: header (organisation, user, language, sign out) and nav. */
export function AppLayout() {
  const { t } = useTranslation();
  const { me, can, signOut } = useSession();
  const navigate = useNavigate();
  const org = useQuery({
    queryKey: ['org'],
    queryFn: () => call(api.GET('/v1/org')),
    enabled: can('members:read'),
    staleTime: 300_000,
  });
  return (
    <>
      <SkipLink />
      <header className="app-header">
        <div className="brand">
          <NavLink to="/models" className="brand-link">
            {t('app.name')}
          </NavLink>
          {org.data ? (
            <span className="org-name">{t('app.organisation', { name: org.data.name })}</span>
          ) : null}
        </div>
        <div className="header-tools">
          {me ? (
            <span className="user-name">
              {t('app.signedInAs', { name: me.display_name || me.email })}
            </span>
          ) : null}
          <LocaleSwitch />
          <Button
            className="button button-secondary"
            onPress={async () => {
              await signOut().catch(() => undefined);
              navigate('/sign-in', { replace: true, state: { signedOut: true } });
            }}
          >
            {t('app.signOut')}
          </Button>
        </div>
      </header>
      <nav className="app-nav" aria-label={t('app.mainNav')}>
        <ul>
          <li>
            <NavLink to="/models">{t('nav.models')}</NavLink>
          </li>
          {can('predictions:read') ? (
            <li>
              <NavLink to="/predictions">{t('nav.predictions')}</NavLink>
            </li>
          ) : null}
          {can('jobs:read') ? (
            <li>
              <NavLink to="/jobs">{t('nav.jobs')}</NavLink>
            </li>
          ) : null}
          {can('keys:manage') ? (
            <li>
              <NavLink to="/api-keys">{t('nav.apiKeys')}</NavLink>
            </li>
          ) : null}
          {can('webhooks:read') ? (
            <li>
              <NavLink to="/webhooks">{t('nav.webhooks')}</NavLink>
            </li>
          ) : null}
          {can('members:read') ? (
            <li>
              <NavLink to="/members">{t('nav.members')}</NavLink>
            </li>
          ) : null}
        </ul>
      </nav>
      <OfflineNotice />
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}

/** Pages before or outside a full session: sign-in, emailed links, required steps. */
export function PublicLayout() {
  const { t } = useTranslation();
  return (
    <>
      <SkipLink />
      <header className="app-header">
        <div className="brand">
          <span className="brand-link">{t('app.name')}</span>
        </div>
        <div className="header-tools">
          <LocaleSwitch />
        </div>
      </header>
      <OfflineNotice />
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
