import { Navigate, Outlet, useLocation } from 'react-router-dom';
import { useTranslation } from 'react-i18next';
import { useSession } from '../auth/session';
import { routeForScope } from '../auth/signInFlow';

/** Admits full sessions; others go to sign-in (or the step their session still needs). */
export function RequireSession() {
  const { me, loading } = useSession();
  const location = useLocation();
  const { t } = useTranslation();
  if (loading) {
    return (
      <p className="page" role="status">
        {t('app.loading')}
      </p>
    );
  }
  if (!me) {
    return <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />;
  }
  if (me.scope !== 'full') return <Navigate to={routeForScope(me.scope, undefined)} replace />;
  return <Outlet />;
}
