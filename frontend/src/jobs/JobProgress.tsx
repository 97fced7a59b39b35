import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import { useFormat } from '../i18n/format';
import type { Progress } from './queries';
import type { Connection } from './useJobEvents';

/** A job's state in words (an unknown state as the API spells it). */
export function useStateName(): (state: string) => string {
  const { t } = useTranslation();
  return (state) => {
    switch (state) {
      case 'queued':
        return t('jobs.states.queued');
      case 'running':
        return t('jobs.states.running');
      case 'succeeded':
        return t('jobs.states.succeeded');
      case 'failed':
        return t('jobs.states.failed');
      case 'cancelled':
        return t('jobs.states.cancelled');
      default:
        return state;
    }
  };
}

/** A job's state and progress bar; `connection` says whether it is followed live. */
export function JobProgress({
  state,
  progress,
  cancelRequested,
  connection,
}: {
  state: string;
  progress: Progress;
  cancelRequested: boolean;
  connection: Connection | null;
}) {
  const { t } = useTranslation();
  const format = useFormat();
  const labelId = useId();
  const stateName = useStateName();
  const total = Math.max(progress.total, 0);
  return (
    <div className="job-progress">
      {/* Only the state is announced: a screen reader hearing every row would hear nothing else. */}
      <p role="status">
        {t('jobs.stateIs', { state: stateName(state) })}
        {cancelRequested && state === 'running' ? ` ${t('jobs.cancelRequested')}` : ''}
      </p>
      <p id={labelId}>
        {t('jobs.progressText', {
          done: format.number(progress.done, 0),
          total: format.number(total, 0),
        })}
        {progress.row_errors > 0 ? ` ${t('jobs.rowErrors', { count: progress.row_errors })}` : ''}
      </p>
      <progress
        aria-labelledby={labelId}
        max={total || 1}
        value={total ? progress.done : state === 'succeeded' ? 1 : 0}
      />
      {connection === 'reconnecting' ? (
        <p className="muted small">{t('jobs.reconnecting')}</p>
      ) : null}
      {connection === 'live' || connection === 'connecting' ? (
        <p className="muted small">{t('jobs.live')}</p>
      ) : null}
    </div>
  );
}
