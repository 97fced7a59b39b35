import { describe, expect, it } from 'vitest';
import { initialSignIn, routeForScope, signInReducer } from './signInFlow';

describe('signInReducer', () => {
  it('goes to the MFA step when the password step asks for a second factor', () => {
    const state = signInReducer(initialSignIn, {
      type: 'credentials-accepted',
      email: 'a@b.example',
      answer: { mfa_required: true, challenge: 'c1' },
    });
    expect(state).toEqual({ step: 'mfa', challenge: 'c1', email: 'a@b.example' });
    expect(
      signInReducer(state, { type: 'mfa-accepted', answer: { csrf_token: 't', scope: 'full' } }),
    ).toEqual({ step: 'done', scope: 'full' });
  });

  it('finishes at once without MFA, carrying the scope', () => {
    expect(
      signInReducer(initialSignIn, {
        type: 'credentials-accepted',
        email: 'a@b.example',
        answer: { csrf_token: 't', scope: 'password_change' },
      }),
    ).toEqual({ step: 'done', scope: 'password_change' });
  });

  it('ignores an MFA answer outside the MFA step, and restarts', () => {
    expect(
      signInReducer(initialSignIn, {
        type: 'mfa-accepted',
        answer: { csrf_token: 't', scope: 'full' },
      }),
    ).toBe(initialSignIn);
    expect(
      signInReducer({ step: 'mfa', challenge: 'c', email: 'e' }, { type: 'mfa-expired' }),
    ).toEqual({
      step: 'credentials',
      notice: 'mfa-expired',
    });
  });
});

describe('routeForScope', () => {
  it('sends restricted sessions to their required step', () => {
    expect(routeForScope('password_change', '/models/x')).toBe('/change-password');
    expect(routeForScope('mfa_enrolment', undefined)).toBe('/mfa-enrolment');
  });
  it('returns a full session to where it was going, never off-site', () => {
    expect(routeForScope('full', '/models/x/try')).toBe('/models/x/try');
    expect(routeForScope('full', '//evil.example')).toBe('/models');
    expect(routeForScope('full', undefined)).toBe('/models');
  });
});
