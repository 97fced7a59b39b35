import { useEffect } from 'react';
import { useTranslation } from 'react-i18next';

/** Sets document.title to "<page> · Assay console". */
export function usePageTitle(page: string): void {
  const { t } = useTranslation();
  const suffix = t('app.console');
  useEffect(() => {
    document.title = page ? `${page} · ${suffix}` : suffix;
  }, [page, suffix]);
}
