import { useState } from 'react';

/**
 * The `token` of an emailed link (`#token=...`), read once; the fragment is then removed
 * from the address bar and history so the secret does not linger there.
 */
export function readFragmentToken(): string | null {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = params.get('token');
  if (location.hash) {
    history.replaceState(history.state, '', location.pathname + location.search);
  }
  return token && token.length >= 16 ? token : null;
}

export function useFragmentToken(): string | null {
  const [token] = useState(readFragmentToken);
  return token;
}
