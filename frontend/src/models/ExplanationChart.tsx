// An explanation as a horizontal bar chart (recharts) with the same numbers in a table,
// so screen readers and keyboard users get every value; the SVG itself is hidden from
// assistive technology.
import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import {
  Bar,
  BarChart,
  Cell,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useFormat } from '../i18n/format';
import type { Explanation } from './explanation';

interface BarDatum {
  name: string;
  value: number;
}

const POSITIVE = '#b91c1c';
const NEGATIVE = '#1d4ed8';

// The chart shows the largest bars only; the table below it always lists every one.
export const CHART_LIMIT = 15;

function Bars({ bars }: { bars: BarDatum[] }) {
  const { t } = useTranslation();
  const format = useFormat();
  const shown = [...bars]
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .slice(0, CHART_LIMIT);
  const height = Math.max(120, shown.length * 28 + 40);
  const longest = shown.reduce((n, bar) => Math.max(n, bar.name.length), 0);
  const labelWidth = Math.min(240, Math.max(80, longest * 7 + 8));
  return (
    <>
      {bars.length > shown.length ? (
        <p className="muted small">
          {t('tryit.chartLimited', { shown: shown.length, total: bars.length })}
        </p>
      ) : null}
      <div className="chart" aria-hidden="true">
        <ResponsiveContainer width="100%" height={height}>
          <BarChart
            data={shown}
            layout="vertical"
            margin={{ top: 8, right: 24, bottom: 8, left: 8 }}
          >
            <XAxis type="number" tickFormatter={(v: number) => format.number(v, 3)} />
            <YAxis type="category" dataKey="name" width={labelWidth} interval={0} />
            <ReferenceLine x={0} stroke="#374151" />
            <Tooltip formatter={(v: number) => format.number(v, 4)} />
            <Bar dataKey="value" isAnimationActive={false}>
              {shown.map((bar) => (
                <Cell key={bar.name} fill={bar.value >= 0 ? POSITIVE : NEGATIVE} />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
    </>
  );
}

export function ExplanationView({
  explanation,
  level = 3,
}: {
  explanation: Explanation;
  level?: 3 | 4;
}) {
  const { t } = useTranslation();
  const format = useFormat();
  const headingId = useId();
  const captionId = `${headingId}-caption`;
  const Heading = level === 3 ? 'h3' : 'h4';

  if (explanation.kind === 'features') {
    const rows = explanation.contributions;
    return (
      <section aria-labelledby={headingId} className="explanation">
        <Heading id={headingId}>{t('tryit.contributions')}</Heading>
        {!rows || rows.length === 0 ? (
          <p>{explanation.note ?? t('tryit.noAttribution')}</p>
        ) : (
          <>
            <Bars bars={rows.map((r) => ({ name: r.feature, value: r.contribution }))} />
            <div className="table-scroll" tabIndex={0} role="region" aria-labelledby={captionId}>
              <table className="data-table">
                <caption id={captionId}>
                  {t('tryit.contributionsCaption', { space: explanation.space ?? '' })}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">{t('tryit.feature')}</th>
                    <th scope="col">{t('tryit.value')}</th>
                    <th scope="col">{t('tryit.contribution')}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={r.feature}>
                      <th scope="row">{r.feature}</th>
                      <td className="num">{format.number(r.value)}</td>
                      <td className="num">{format.number(r.contribution)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {explanation.bias !== null ? (
              <p className="muted">{t('tryit.bias', { bias: format.number(explanation.bias) })}</p>
            ) : null}
          </>
        )}
      </section>
    );
  }

  if (explanation.kind === 'rules') {
    return (
      <section aria-labelledby={headingId} className="explanation">
        <Heading id={headingId}>{t('tryit.rulesFired')}</Heading>
        {explanation.fired.length === 0 ? (
          <p>{t('tryit.noRules')}</p>
        ) : (
          <>
            <Bars bars={explanation.fired.map((r) => ({ name: r.rule, value: r.points }))} />
            <div className="table-scroll" tabIndex={0} role="region" aria-labelledby={captionId}>
              <table className="data-table">
                <caption id={captionId}>
                  {t('tryit.rulesCaption', { total: format.number(explanation.total_points) })}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">{t('tryit.rule')}</th>
                    <th scope="col">{t('tryit.points')}</th>
                  </tr>
                </thead>
                <tbody>
                  {explanation.fired.map((r) => (
                    <tr key={r.rule}>
                      <th scope="row">
                        {r.rule}
                        {r.description ? (
                          <span className="muted small"> — {r.description}</span>
                        ) : null}
                      </th>
                      <td className="num">
                        {format.number(r.points)}
                        {r.capped ? ` (${t('tryit.capped')})` : ''}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>
    );
  }

  return (
    <section aria-labelledby={headingId} className="explanation">
      <Heading id={headingId}>{t('tryit.components')}</Heading>
      {explanation.ceiling ? <p>{t('tryit.ceiling', { ceiling: explanation.ceiling })}</p> : null}
      <Bars bars={explanation.components.map((c) => ({ name: c.name, value: c.contribution }))} />
      <div className="table-scroll" tabIndex={0} role="region" aria-labelledby={captionId}>
        <table className="data-table">
          <caption id={captionId}>{t('tryit.componentsCaption')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('tryit.component')}</th>
              <th scope="col">{t('tryit.componentScore')}</th>
              <th scope="col">{t('tryit.weight')}</th>
              <th scope="col">{t('tryit.contribution')}</th>
            </tr>
          </thead>
          <tbody>
            {explanation.components.map((c) => (
              <tr key={c.name}>
                <th scope="row">{c.name}</th>
                <td className="num">{format.number(c.score)}</td>
                <td className="num">{format.number(c.weight)}</td>
                <td className="num">{format.number(c.contribution)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {level === 3
        ? explanation.components.map((c) =>
            c.explanation ? (
              <details key={c.name} className="component-detail">
                <summary>{c.name}</summary>
                <ExplanationView explanation={c.explanation} level={4} />
              </details>
            ) : null,
          )
        : null}
    </section>
  );
}
