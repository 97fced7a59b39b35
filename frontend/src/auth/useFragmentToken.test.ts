import { describe, expect, it } from 'vitest';
import { readFragmentToken } from './useFragmentToken';

describe('readFragmentToken', () => {
  it('reads the token and removes the fragment from the address bar', () => {
    history.replaceState(
      null,
      '',
      '/console/reset-password#token=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    );
    expect(readFragmentToken()).toBe('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG');
    expect(location.hash).toBe('');
    expect(location.pathname).toBe('/console/reset-password');
  });

  it('answers null without a token', () => {
    history.replaceState(null, '', '/console/verify-email');
    expect(readFragmentToken()).toBeNull();
  });
});
