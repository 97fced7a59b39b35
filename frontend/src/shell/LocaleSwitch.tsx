import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import { LOCALES, isLocale } from '../i18n';

// A native <select>: react-aria's Select opens a Popover that injects a <style>
// element, which the strict CSP refuses (see README).
export function LocaleSwitch() {
  const { t, i18n } = useTranslation();
  const id = useId();
  return (
    <div className="locale-switch">
      <label htmlFor={id}>{t('app.language')}</label>
      <select
        id={id}
        value={i18n.language}
        onChange={(event) => {
          if (isLocale(event.target.value)) void i18n.changeLanguage(event.target.value);
        }}
      >
        {LOCALES.map((locale) => (
          <option key={locale} value={locale} lang={locale}>
            {t(`locale.${locale}`)}
          </option>
        ))}
      </select>
    </div>
  );
}
