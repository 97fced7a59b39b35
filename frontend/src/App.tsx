import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { lazy, Suspense } from 'react';
import { I18nProvider } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { BrowserRouter, Navigate, Route, Routes } from 'react-router-dom';
import { ApiError } from './api/problem';
import { AcceptInvitationPage } from './auth/AcceptInvitationPage';
import { ChangePasswordPage } from './auth/ChangePasswordPage';
import { ForgotPasswordPage } from './auth/ForgotPasswordPage';
import { MfaEnrolmentPage } from './auth/MfaEnrolmentPage';
import { ResetPasswordPage } from './auth/ResetPasswordPage';
import { SessionProvider } from './auth/session';
import { SignInPage } from './auth/SignInPage';
import { VerifyEmailPage } from './auth/VerifyEmailPage';
import { ApiKeysPage } from './keys/ApiKeysPage';
import { JobPage } from './jobs/JobPage';
import { JobsPage } from './jobs/JobsPage';
import { MembersPage } from './members/MembersPage';
import { ModelDetailPage } from './models/ModelDetailPage';
import { ModelsPage } from './models/ModelsPage';
import { PredictionsPage } from './predictions/PredictionsPage';
import { ErrorBoundary } from './shell/ErrorBoundary';
import { AppLayout, PublicLayout } from './shell/Layout';
import { NotFoundPage } from './shell/NotFound';
import { RequireSession } from './shell/RequireSession';
import { WebhookPage } from './webhooks/WebhookPage';
import { WebhooksPage } from './webhooks/WebhooksPage';

// The charting library is the largest dependency: loaded with the try-it page only.
const TryItPage = lazy(() => import('./models/TryItPage'));

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // 4xx answers do not get better by asking again.
        retry: (count, error) =>
          !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
        refetchOnWindowFocus: false,
      },
    },
  });
}

export function AppRoutes() {
  const { t } = useTranslation();
  return (
    <Routes>
      <Route element={<PublicLayout />}>
        <Route path="/sign-in" element={<SignInPage />} />
        <Route path="/forgot-password" element={<ForgotPasswordPage />} />
        <Route path="/reset-password" element={<ResetPasswordPage />} />
        <Route path="/verify-email" element={<VerifyEmailPage />} />
        <Route path="/accept-invitation" element={<AcceptInvitationPage />} />
        <Route path="/change-password" element={<ChangePasswordPage />} />
        <Route path="/mfa-enrolment" element={<MfaEnrolmentPage />} />
      </Route>
      <Route element={<RequireSession />}>
        <Route element={<AppLayout />}>
          <Route index element={<Navigate to="/models" replace />} />
          <Route path="/models" element={<ModelsPage />} />
          <Route path="/models/:name" element={<ModelDetailPage />} />
          <Route
            path="/models/:name/try"
            element={
              <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
                <TryItPage />
              </Suspense>
            }
          />
          <Route path="/predictions" element={<PredictionsPage />} />
          <Route path="/jobs" element={<JobsPage />} />
          <Route path="/jobs/:id" element={<JobPage />} />
          <Route path="/api-keys" element={<ApiKeysPage />} />
          <Route path="/members" element={<MembersPage />} />
          <Route path="/webhooks" element={<WebhooksPage />} />
          <Route path="/webhooks/:id" element={<WebhookPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Route>
    </Routes>
  );
}

function LocalisedAria({ children }: { children: React.ReactNode }) {
  const { i18n } = useTranslation();
  return <I18nProvider locale={i18n.language}>{children}</I18nProvider>;
}

export function App({ queryClient = makeQueryClient() }: { queryClient?: QueryClient }) {
  return (
    <ErrorBoundary>
      <QueryClientProvider client={queryClient}>
        <LocalisedAria>
          <BrowserRouter
            basename="/console"
            future={{ v7_startTransition: true, v7_relativeSplatPath: true }}
          >
            <SessionProvider>
              <AppRoutes />
            </SessionProvider>
          </BrowserRouter>
        </LocalisedAria>
      </QueryClientProvider>
    </ErrorBoundary>
  );
}
