import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link, Navigate } from 'react-router-dom';
import { api, call } from '../api/client';
import { fieldErrors, toProblem, type Problem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { Field } from '../ui/Field';
import { ProblemAlert } from '../ui/ProblemAlert';
import { ME_KEY, useSession } from './session';

/** Required TOTP enrolment (scope mfa_enrolment). Confirming ends this restricted
 * session, so the user signs in again with the new factor. */
export function MfaEnrolmentPage() {
  const { t } = useTranslation();
  const { me, loading } = useSession();
  const queryClient = useQueryClient();
  const [code, setCode] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  usePageTitle(t('auth.enrolTitle'));
  const begin = useMutation({
    mutationFn: () => call(api.POST('/v1/me/mfa/totp')),
    onMutate: () => setProblem(null),
    onError: (error) => setProblem(toProblem(error)),
  });
  const confirm = useMutation({
    mutationFn: () => call(api.POST('/v1/me/mfa/totp/confirm', { body: { code: code.trim() } })),
    onMutate: () => setProblem(null),
    onSuccess: () => queryClient.setQueryData(ME_KEY, null),
    onError: (error) => setProblem(toProblem(error)),
  });

  if (confirm.data) {
    return (
      <div className="page narrow">
        <h1>{t('auth.backupCodesTitle')}</h1>
        <p>{t('auth.backupCodesIntro')}</p>
        <ul className="codes">
          {confirm.data.backup_codes.map((backup) => (
            <li key={backup}>
              <code>{backup}</code>
            </li>
          ))}
        </ul>
        <Link to="/sign-in">{t('auth.goToSignIn')}</Link>
      </div>
    );
  }
  if (loading) return null;
  if (!me) return <Navigate to="/sign-in" replace />;
  const errors = fieldErrors(problem ?? undefined, ['code']);
  return (
    <div className="page narrow">
      <h1>{t('auth.enrolTitle')}</h1>
      <p>{t('auth.enrolIntro')}</p>
      <ProblemAlert problem={problem} />
      {!begin.data ? (
        <Button className="button" onPress={() => begin.mutate()} isDisabled={begin.isPending}>
          {t('auth.enrolStart')}
        </Button>
      ) : (
        <>
          <img
            className="qr"
            alt={t('auth.enrolQrAlt')}
            src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(begin.data.qr_svg)}`}
          />
          <p>{t('auth.enrolSecret', { secret: begin.data.secret })}</p>
          <Form
            validationBehavior="aria"
            onSubmit={(event) => {
              event.preventDefault();
              confirm.mutate();
            }}
          >
            <Field
              label={t('auth.mfaCode')}
              name="code"
              value={code}
              onChange={setCode}
              autoComplete="one-time-code"
              inputMode="numeric"
              isRequired
              error={errors.code}
            />
            <Button type="submit" className="button" isDisabled={confirm.isPending}>
              {t('auth.enrolConfirm')}
            </Button>
          </Form>
        </>
      )}
    </div>
  );
}
