// The sign-in steps as a reducer: credentials, then (when the account has MFA) a
// second factor, then the session's scope decides where the console goes next.

export type Scope = 'full' | 'password_change' | 'mfa_enrolment' | string;

export type SignInState =
  | { step: 'credentials'; notice?: 'mfa-expired' }
  | { step: 'mfa'; challenge: string; email: string }
  | { step: 'done'; scope: Scope };

export type SignInEvent =
  | {
      type: 'credentials-accepted';
      email: string;
      answer: { mfa_required: true; challenge: string } | { csrf_token: string; scope: string };
    }
  | { type: 'mfa-accepted'; answer: { csrf_token: string; scope: string } }
  | { type: 'mfa-expired' }
  | { type: 'restart' };

export const initialSignIn: SignInState = { step: 'credentials' };

export function signInReducer(state: SignInState, event: SignInEvent): SignInState {
  switch (event.type) {
    case 'credentials-accepted':
      if ('mfa_required' in event.answer) {
        return { step: 'mfa', challenge: event.answer.challenge, email: event.email };
      }
      return { step: 'done', scope: event.answer.scope };
    case 'mfa-accepted':
      return state.step === 'mfa' ? { step: 'done', scope: event.answer.scope } : state;
    case 'mfa-expired':
      return { step: 'credentials', notice: 'mfa-expired' };
    case 'restart':
      return initialSignIn;
  }
}

/** Where a session of `scope` must go first; `wanted` is where the user was headed. */
export function routeForScope(scope: Scope, wanted: string | undefined): string {
  if (scope === 'password_change') return '/change-password';
  if (scope === 'mfa_enrolment') return '/mfa-enrolment';
  const safe = wanted && wanted.startsWith('/') && !wanted.startsWith('//') ? wanted : '/models';
  return safe === '/sign-in' ? '/models' : safe;
}
