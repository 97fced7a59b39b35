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

export function ForgotPasswordPage() {
  const { t } = useTranslation();
  const [email, setEmail] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  usePageTitle(t('auth.forgotTitle'));
  const send = useMutation({
    mutationFn: () => call(api.POST('/v1/auth/password/forgot', { body: { email } })),
    onMutate: () => setProblem(null),
    onError: (error) => setProblem(toProblem(error)),
  });
  const errors = fieldErrors(problem ?? undefined, ['email']);
  return (
    <div className="page narrow">
      <h1>{t('auth.forgotTitle')}</h1>
      {send.data ? (
        <Notice>{send.data.detail}</Notice>
      ) : (
        <>
          <p>{t('auth.forgotIntro')}</p>
          <ProblemAlert problem={problem} />
          <Form
            validationBehavior="aria"
            onSubmit={(event) => {
              event.preventDefault();
              send.mutate();
            }}
          >
            <Field
              label={t('auth.email')}
              name="email"
              type="email"
              autoComplete="email"
              value={email}
              onChange={setEmail}
              isRequired
              error={errors.email}
            />
            <Button type="submit" className="button" isDisabled={send.isPending}>
              {t('auth.sendLink')}
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
