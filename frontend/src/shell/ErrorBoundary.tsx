import { Component, type ErrorInfo, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';

function Fallback() {
  const { t } = useTranslation();
  return (
    <main id="main" className="page narrow" tabIndex={-1}>
      <h1>{t('errors.boundaryTitle')}</h1>
      <p>{t('errors.boundaryBody')}</p>
      <button type="button" className="button" onClick={() => location.reload()}>
        {t('errors.reload')}
      </button>
    </main>
  );
}

/** Catches render errors anywhere below it and shows a recoverable page. */
export class ErrorBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error('console render error', error, info.componentStack);
  }

  override render(): ReactNode {
    return this.state.failed ? <Fallback /> : this.props.children;
  }
}
