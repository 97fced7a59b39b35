// Who is signed in (GET /v1/me), what they may do, and the session's lifecycle: the CSRF
// token of a new session, sign-out, and "session ended" when a request answers 401.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { api, call, csrfFetch, onSessionEnded, type Schemas } from '../api/client';
import { ApiError } from '../api/problem';

export type Me = Schemas['MeResponse'];

interface Session {
  me: Me | null;
  loading: boolean;
  /** The last session ended on its own (expiry, revocation), not by signing out. */
  expired: boolean;
  /** A new session began (sign-in, MFA, forced password change): keep its CSRF token. */
  started: (answer: { csrf_token: string }) => Promise<Me | null>;
  signOut: () => Promise<void>;
  can: (permission: string) => boolean;
}

const SessionContext = createContext<Session | null>(null);

export const ME_KEY = ['me'] as const;

async function fetchMe(): Promise<Me | null> {
  try {
    return await call(api.GET('/v1/me'));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export function SessionProvider({ children }: { children: React.ReactNode }) {
  const queryClient = useQueryClient();
  const [expired, setExpired] = useState(false);
  const me = useQuery({ queryKey: ME_KEY, queryFn: fetchMe, staleTime: 60_000 });

  useEffect(
    () =>
      onSessionEnded(() => {
        if (queryClient.getQueryData(ME_KEY)) {
          setExpired(true);
          csrfFetch.setToken(null);
          queryClient.setQueryData(ME_KEY, null);
          queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== ME_KEY[0] });
        }
      }),
    [queryClient],
  );

  // After a reload the session cookie survives but the in-memory CSRF token does not.
  const signedIn = Boolean(me.data);
  useEffect(() => {
    if (signedIn && !csrfFetch.getToken()) void csrfFetch.refresh();
  }, [signedIn]);

  const started = useCallback(
    async (answer: { csrf_token: string }) => {
      csrfFetch.setToken(answer.csrf_token);
      setExpired(false);
      queryClient.removeQueries({ predicate: (q) => q.queryKey[0] !== ME_KEY[0] });
      const fresh = await fetchMe();
      queryClient.setQueryData(ME_KEY, fresh);
      return fresh;
    },
    [queryClient],
  );

  const signOut = useCallback(async () => {
    try {
      await call(api.POST('/v1/auth/logout'));
    } finally {
      csrfFetch.setToken(null);
      setExpired(false);
      queryClient.clear();
      queryClient.setQueryData(ME_KEY, null);
    }
  }, [queryClient]);

  const value = useMemo<Session>(() => {
    const current = me.data ?? null;
    const permissions = new Set(current?.permissions ?? []);
    return {
      me: current,
      loading: me.isPending,
      expired,
      started,
      signOut,
      can: (permission) => current?.scope === 'full' && permissions.has(permission),
    };
  }, [me.data, me.isPending, expired, started, signOut]);

  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}
