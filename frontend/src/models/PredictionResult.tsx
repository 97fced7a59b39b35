import { useTranslation } from 'react-i18next';
import type { Schemas } from '../api/client';
import { useFormat } from '../i18n/format';
import { ExplanationView } from './ExplanationChart';
import { readExplanation } from './explanation';

type Answer = Schemas['PredictResponse'];

export function PredictionResult({ answer }: { answer: Answer }) {
  const { t } = useTranslation();
  const format = useFormat();
  const result = answer.results[0];
  if (!result) return null;
  if ('errors' in result) {
    return (
      <div className="alert alert-error" role="alert">
        <p>{t('tryit.rowErrors')}</p>
        <ul>
          {result.errors.map((e, i) => (
            <li key={i}>
              {typeof e.field === 'string' ? <code>{e.field}</code> : null}{' '}
              {String(e.message ?? '')}
            </li>
          ))}
        </ul>
      </div>
    );
  }
  const explanation = readExplanation(result.explanation);
  const derived = Object.entries(result.derived ?? {});
  return (
    <>
      <dl className="scorecard">
        <div>
          <dt>{t('tryit.scoreLabel')}</dt>
          <dd className="score">{format.number(result.score)}</dd>
        </div>
        <div>
          <dt>{t('tryit.verdict')}</dt>
          <dd>{result.label ?? t('tryit.none')}</dd>
        </div>
        <div>
          <dt>{t('tryit.risk')}</dt>
          <dd>{result.risk ?? t('tryit.none')}</dd>
        </div>
      </dl>
      <p className="muted small">
        {t('tryit.scoredBy', { name: answer.model.name, version: answer.model.version })}
      </p>
      {derived.length > 0 ? (
        <>
          <h3>{t('tryit.derived')}</h3>
          <dl className="facts">
            {derived.map(([key, value]) => (
              <div key={key}>
                <dt>
                  <code>{key}</code>
                </dt>
                <dd>{typeof value === 'number' ? format.number(value) : String(value)}</dd>
              </div>
            ))}
          </dl>
        </>
      ) : null}
      {explanation ? <ExplanationView explanation={explanation} /> : null}
    </>
  );
}
