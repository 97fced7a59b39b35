// Dates and numbers through Intl, in the console's current language.
import { useTranslation } from 'react-i18next';

export function useFormat() {
  const { i18n } = useTranslation();
  const locale = i18n.language;
  return {
    number: (value: number, digits = 4) =>
      new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(value),
    dateTime: (iso: string) =>
      new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(
        new Date(iso),
      ),
    list: (items: string[]) => new Intl.ListFormat(locale, { type: 'conjunction' }).format(items),
  };
}
