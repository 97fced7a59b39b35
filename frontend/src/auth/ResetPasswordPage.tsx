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

export function ResetPasswordPage() {
  const { t } = useTranslation();
  const token = useFragmentToken();
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  usePageTitle(t('auth.resetTitle'));
  const reset = useMutation({
    mutationFn: (value: string) =>
      call(api.POST('/v1/auth/password/reset', { body: { token: value, new_password: password } })),
    onMutate: () => setProblem(null),
    onError: (error) => setProblem(toProblem(error)),
  });
  const errors = fieldErrors(problem ?? undefined, ['new_password', 'password']);
  return (
    <div className="page narrow">
      <h1>{t('auth.resetTitle')}</h1>
      {!token ? (
        <div className="alert alert-error" role="alert">
          {t('auth.missingToken')}
        </div>
      ) : reset.isSuccess ? (
        <Notice>{t('auth.resetDone')}</Notice>
      ) : (
        <>
          <ProblemAlert problem={problem} />
          <Form
            validationBehavior="aria"
            onSubmit={(event) => {
              event.preventDefault();
              if (password !== confirm) return setMismatch(true);
              setMismatch(false);
              reset.mutate(token);
            }}
          >
            <Field
              label={t('auth.newPassword')}
              name="new_password"
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={setPassword}
              isRequired
              description={t('auth.passwordHelp')}
              error={errors.new_password ?? errors.password}
            />
            <Field
              label={t('auth.confirmPassword')}
              name="confirm_password"
              type="password"
              autoComplete="new-password"
              value={confirm}
              onChange={setConfirm}
              isRequired
              error={mismatch ? t('auth.mismatch') : undefined}
            />
            <Button type="submit" className="button" isDisabled={reset.isPending}>
              {t('auth.setPassword')}
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
