import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { api, call } from '../api/client';
import { fieldErrors, toProblem, type Problem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { Field } from '../ui/Field';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';
import { useFragmentToken } from './useFragmentToken';

/**
 * The API needs a password either way: the account's own when the address already has
 * one, or a new one (with an optional display name) when the invitation creates it.
 */
export function AcceptInvitationPage() {
  const { t } = useTranslation();
  const token = useFragmentToken();
  const [password, setPassword] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  usePageTitle(t('auth.inviteTitle'));
  const accept = useMutation({
    mutationFn: (value: string) =>
      call(
        api.POST('/v1/auth/invitations/accept', {
          body: { token: value, password, display_name: displayName.trim() },
        }),
      ),
    onMutate: () => setProblem(null),
    onError: (error) => setProblem(toProblem(error)),
  });
  const errors = fieldErrors(problem ?? undefined, ['password', 'display_name']);
  return (
    <div className="page narrow">
      <h1>{t('auth.inviteTitle')}</h1>
      {!token ? (
        <div className="alert alert-error" role="alert">
          {t('auth.missingToken')}
        </div>
      ) : accept.data ? (
        <Notice>{t('auth.accepted', { org: accept.data.org_name, role: accept.data.role })}</Notice>
      ) : (
        <>
          <p>{t('auth.inviteIntro')}</p>
          <ProblemAlert problem={problem} />
          <Form
            validationBehavior="aria"
            onSubmit={(event) => {
              event.preventDefault();
              accept.mutate(token);
            }}
          >
            <Field
              label={t('auth.invitePassword')}
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={setPassword}
              isRequired
              description={t('auth.invitePasswordHelp')}
              error={errors.password}
            />
            <Field
              label={t('auth.displayName')}
              name="display_name"
              autoComplete="name"
              value={displayName}
              onChange={setDisplayName}
              error={errors.display_name}
            />
            <Button type="submit" className="button" isDisabled={accept.isPending}>
              {t('auth.accept')}
            </Button>
          </Form>
        </>
      )}
      <p>
        <Link to="/sign-in">{t('auth.goToSignIn')}</Link>
      </p>
    </div>
  );
}
