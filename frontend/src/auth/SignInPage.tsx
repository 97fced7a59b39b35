import { useMutation } from '@tanstack/react-query';
import { useReducer, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { Link, useLocation, useNavigate } from 'react-router-dom';
import { api, call } from '../api/client';
import { fieldErrors, toProblem, type Problem } from '../api/problem';
import { usePageTitle } from '../shell/usePageTitle';
import { Field } from '../ui/Field';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';
import { useSession } from './session';
import { initialSignIn, routeForScope, signInReducer } from './signInFlow';

interface LocationState {
  from?: string;
  signedOut?: boolean;
}

export function SignInPage() {
  const { t } = useTranslation();
  const { started, expired } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const wanted = (location.state as LocationState | null)?.from;
  const signedOut = (location.state as LocationState | null)?.signedOut;
  const [state, dispatch] = useReducer(signInReducer, initialSignIn);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [org, setOrg] = useState('');
  const [code, setCode] = useState('');
  const [problem, setProblem] = useState<Problem | null>(null);
  usePageTitle(state.step === 'mfa' ? t('auth.mfaTitle') : t('auth.signInTitle'));

  async function finish(answer: { csrf_token: string; scope: string }) {
    await started(answer);
    navigate(routeForScope(answer.scope, wanted), { replace: true });
  }

  const credentials = useMutation({
    mutationFn: () =>
      call(
        api.POST('/v1/auth/session', {
          body: { email, password, ...(org.trim() ? { org: org.trim() } : {}) },
        }),
      ),
    onMutate: () => setProblem(null),
    onSuccess: async (answer) => {
      setPassword('');
      if ('mfa_required' in answer) {
        dispatch({ type: 'credentials-accepted', email, answer });
      } else {
        dispatch({ type: 'credentials-accepted', email, answer });
        await finish(answer);
      }
    },
    onError: (error) => setProblem(toProblem(error)),
  });

  const mfa = useMutation({
    mutationFn: (challenge: string) =>
      call(
        api.POST('/v1/auth/mfa', { body: { challenge, code: code.trim(), session: 'console' } }),
      ),
    onMutate: () => setProblem(null),
    onSuccess: async (answer) => {
      if (!('csrf_token' in answer)) return;
      dispatch({ type: 'mfa-accepted', answer });
      await finish(answer);
    },
    onError: (error) => {
      const found = toProblem(error);
      setCode('');
      setProblem(found);
    },
  });

  const errors = fieldErrors(problem ?? undefined, ['email', 'password', 'org', 'code']);

  if (state.step === 'mfa') {
    return (
      <div className="page narrow">
        <h1>{t('auth.mfaTitle')}</h1>
        <p>{t('auth.mfaIntro')}</p>
        <ProblemAlert problem={problem} />
        <Form
          validationBehavior="aria"
          onSubmit={(event) => {
            event.preventDefault();
            mfa.mutate(state.challenge);
          }}
        >
          <Field
            label={t('auth.mfaCode')}
            name="code"
            value={code}
            onChange={setCode}
            autoComplete="one-time-code"
            inputMode="text"
            isRequired
            autoFocus
            error={errors.code}
          />
          <div className="actions">
            <Button type="submit" className="button" isDisabled={mfa.isPending}>
              {t('auth.verify')}
            </Button>
            <Button
              className="button button-secondary"
              onPress={() => {
                setProblem(null);
                dispatch({ type: 'restart' });
              }}
            >
              {t('auth.mfaRestart')}
            </Button>
          </div>
        </Form>
      </div>
    );
  }

  return (
    <div className="page narrow">
      <h1>{t('auth.signInTitle')}</h1>
      {expired ? <Notice>{t('auth.sessionExpired')}</Notice> : null}
      {signedOut && !expired ? <Notice>{t('auth.signedOut')}</Notice> : null}
      {state.step === 'credentials' && state.notice === 'mfa-expired' ? (
        <Notice>{t('auth.mfaExpired')}</Notice>
      ) : null}
      <ProblemAlert problem={problem} />
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          credentials.mutate();
        }}
      >
        <Field
          label={t('auth.email')}
          name="email"
          type="email"
          autoComplete="username"
          value={email}
          onChange={setEmail}
          isRequired
          error={errors.email}
        />
        <Field
          label={t('auth.password')}
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
          isRequired
          error={errors.password}
        />
        <Field
          label={t('auth.organisation')}
          name="org"
          value={org}
          onChange={setOrg}
          autoComplete="organization"
          description={t('auth.organisationHelp')}
          error={errors.org}
        />
        <div className="actions">
          <Button type="submit" className="button" isDisabled={credentials.isPending}>
            {t('auth.signIn')}
          </Button>
          <Link to="/forgot-password">{t('auth.forgotLink')}</Link>
        </div>
      </Form>
    </div>
  );
}
