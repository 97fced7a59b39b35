import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Navigate, useNavigate } from 'react-router-dom';
import { api, call } from '../api/client';
import { fieldErrors, toProblem, type Problem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { Field } from '../ui/Field';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';
import { useSession } from './session';
import { routeForScope } from './signInFlow';

/** The forced first-sign-in change (scope password_change), or a voluntary one. */
export function ChangePasswordPage() {
  const { t } = useTranslation();
  const { me, loading, started } = useSession();
  const navigate = useNavigate();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  const [mismatch, setMismatch] = useState(false);
  const [done, setDone] = useState(false);
  usePageTitle(t('auth.changeTitle'));

  const change = useMutation({
    mutationFn: async () => {
      const { data, error, response } = await api.POST('/v1/me/password', {
        body: { current_password: current, new_password: next },
        parseAs: 'text',
      });
      if (!response.ok) return call<never>(Promise.resolve({ error, response }));
      // 204 when this session goes on; 200 with a new session after a forced change.
      return data ? (JSON.parse(data) as { csrf_token?: string; scope?: string }) : null;
    },
    onMutate: () => setProblem(null),
    onSuccess: async (answer) => {
      setCurrent('');
      setNext('');
      setConfirm('');
      if (answer?.csrf_token) {
        const fresh = await started({ csrf_token: answer.csrf_token });
        navigate(routeForScope(fresh?.scope ?? answer.scope ?? 'full', undefined), {
          replace: true,
        });
      } else {
        setDone(true);
      }
    },
    onError: (error) => setProblem(toProblem(error)),
  });

  if (loading) return null;
  if (!me) return <Navigate to="/sign-in" replace />;
  const errors = fieldErrors(problem ?? undefined, [
    'current_password',
    'new_password',
    'password',
  ]);
  const newPasswordError = errors.new_password ?? errors.password;

  return (
    <div className="page narrow">
      <h1>{t('auth.changeTitle')}</h1>
      {me.scope === 'password_change' ? <p>{t('auth.changeIntro')}</p> : null}
      {done ? <Notice>{t('auth.changed')}</Notice> : null}
      <ProblemAlert problem={problem} />
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          if (next !== confirm) {
            setMismatch(true);
            return;
          }
          setMismatch(false);
          change.mutate();
        }}
      >
        <Field
          label={t('auth.currentPassword')}
          name="current_password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={setCurrent}
          isRequired
          error={errors.current_password}
        />
        <Field
          label={t('auth.newPassword')}
          name="new_password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={setNext}
          isRequired
          description={t('auth.passwordHelp')}
          error={newPasswordError}
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
        <Button type="submit" className="button" isDisabled={change.isPending}>
          {t('auth.changePassword')}
        </Button>
      </Form>
    </div>
  );
}
