import { useMutation } from '@tanstack/react-query';
import { useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { api, call } from '../api/client';
import { toProblem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';
import { useFragmentToken } from './useFragmentToken';

export function VerifyEmailPage() {
  const { t } = useTranslation();
  const token = useFragmentToken();
  usePageTitle(t('auth.verifyTitle'));
  const verify = useMutation({
    mutationFn: (value: string) =>
      call(api.POST('/v1/auth/email/verify', { body: { token: value } })),
  });
  const { mutate } = verify;
  useEffect(() => {
    if (token) mutate(token);
  }, [token, mutate]);
  return (
    <div className="page narrow">
      <h1>{t('auth.verifyTitle')}</h1>
      {!token ? (
        <div className="alert alert-error" role="alert">
          {t('auth.missingToken')}
        </div>
      ) : verify.isSuccess ? (
        <Notice>{t('auth.verified')}</Notice>
      ) : verify.isError ? (
        <ProblemAlert problem={toProblem(verify.error)} />
      ) : (
        <p role="status">{t('auth.verifying')}</p>
      )}
      <p>
        <Link to="/sign-in">{t('auth.goToSignIn')}</Link>
      </p>
    </div>
  );
}
