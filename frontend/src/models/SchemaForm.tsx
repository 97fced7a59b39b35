// A form generated from a model version's input schema: number and integer fields as
// text boxes checked against minimum/maximum, enums as selects, booleans as checkboxes,
// strings with their length and pattern; server field errors shown on their fields.
import { useId, useState } from 'react';
import { Button, Checkbox, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { useFormat } from '../i18n/format';
import { Field } from '../ui/Field';
import {
  initialValues,
  isRequired,
  validateRecord,
  type FieldProblem,
  type FieldSpec,
  type FieldValue,
  type FormValues,
} from './inputSchema';

export interface SchemaFormProps {
  fields: FieldSpec[];
  onSubmit: (record: Record<string, FieldValue>) => void;
  /** Field errors from the server, keyed by field name. */
  serverErrors?: Record<string, string>;
  isSubmitting?: boolean;
  submitLabel: string;
}

function humanise(name: string): string {
  const words = name.replace(/_/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function fieldLabel(field: FieldSpec): string {
  return humanise(field.name) + (field.unit ? ` (${field.unit})` : '');
}

function useProblemText() {
  const { t } = useTranslation();
  const format = useFormat();
  return (problem: FieldProblem): string => {
    switch (problem.code) {
      case 'required':
        return t('errors.required');
      case 'number':
        return t('tryit.notANumber');
      case 'integer':
        return t('tryit.notAnInteger');
      case 'minimum':
        return t('tryit.min', { min: format.number(problem.limit, 6) });
      case 'maximum':
        return t('tryit.max', { max: format.number(problem.limit, 6) });
      case 'min_length':
        return t('tryit.minLength', { min: problem.limit });
      case 'max_length':
        return t('tryit.maxLength', { max: problem.limit });
      case 'pattern':
        return t('tryit.pattern');
    }
  };
}

function SelectField({
  field,
  value,
  onChange,
  error,
}: {
  field: FieldSpec;
  value: string;
  onChange: (value: string) => void;
  error: string | undefined;
}) {
  const { t } = useTranslation();
  const id = useId();
  const required = isRequired(field);
  const described = [field.description ? `${id}-help` : null, error ? `${id}-error` : null]
    .filter(Boolean)
    .join(' ');
  // A native <select>: react-aria's Select renders in a Popover that injects a <style>
  // element, which the strict CSP refuses.
  return (
    <div className="field">
      <span className="label-row">
        <label htmlFor={id}>{fieldLabel(field)}</label>
        {required ? (
          <span aria-hidden="true" className="required-mark">
            *
          </span>
        ) : null}
      </span>
      <select
        id={id}
        name={field.name}
        value={value}
        aria-required={required}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(event) => onChange(event.target.value)}
      >
        <option value="">{t('tryit.selectPlaceholder')}</option>
        {(field.enum ?? []).map((option) => (
          <option key={String(option)} value={String(option)}>
            {String(option)}
          </option>
        ))}
      </select>
      {field.description ? (
        <span id={`${id}-help`} className="field-help">
          {field.description}
        </span>
      ) : null}
      {error ? (
        <span id={`${id}-error`} className="field-error">
          {error}
        </span>
      ) : null}
    </div>
  );
}

function BooleanField({
  field,
  value,
  onChange,
  error,
}: {
  field: FieldSpec;
  value: boolean;
  onChange: (value: boolean) => void;
  error: string | undefined;
}) {
  const id = useId();
  const described = [field.description ? `${id}-help` : null, error ? `${id}-error` : null]
    .filter(Boolean)
    .join(' ');
  return (
    <div className="field field-checkbox">
      <Checkbox
        name={field.name}
        isSelected={value}
        onChange={onChange}
        isInvalid={Boolean(error)}
        {...(described ? { 'aria-describedby': described } : {})}
      >
        <span className="checkbox-box" aria-hidden="true">
          <svg viewBox="0 0 18 18">
            <polyline points="3 9.5 7 13.5 15 5" />
          </svg>
        </span>
        {fieldLabel(field)}
      </Checkbox>
      {field.description ? (
        <span id={`${id}-help`} className="field-help">
          {field.description}
        </span>
      ) : null}
      {error ? (
        <span id={`${id}-error`} className="field-error">
          {error}
        </span>
      ) : null}
    </div>
  );
}

export function SchemaForm({
  fields,
  onSubmit,
  serverErrors = {},
  isSubmitting = false,
  submitLabel,
}: SchemaFormProps) {
  const { t } = useTranslation();
  const format = useFormat();
  const problemText = useProblemText();
  const [values, setValues] = useState<FormValues>(() => initialValues(fields));
  const [problems, setProblems] = useState<Record<string, FieldProblem>>({});
  // A server error is shown until its field is edited.
  const [edited, setEdited] = useState<Set<string>>(new Set());
  const [lastServerErrors, setLastServerErrors] = useState(serverErrors);
  if (lastServerErrors !== serverErrors) {
    setLastServerErrors(serverErrors);
    setEdited(new Set());
  }

  function set(name: string, value: string | boolean) {
    setValues((current) => ({ ...current, [name]: value }));
    setEdited((current) => new Set(current).add(name));
    setProblems((current) => {
      if (!(name in current)) return current;
      const next = { ...current };
      delete next[name];
      return next;
    });
  }

  function errorOf(name: string): string | undefined {
    const local = problems[name];
    if (local) return problemText(local);
    return edited.has(name) ? undefined : serverErrors[name];
  }

  function hint(field: FieldSpec): string | undefined {
    const parts: string[] = [];
    if (field.description) parts.push(field.description);
    const { minimum: min, maximum: max } = field;
    if (min != null && max != null)
      parts.push(t('models.range', { min: format.number(min, 6), max: format.number(max, 6) }));
    else if (min != null) parts.push(t('models.atLeast', { min: format.number(min, 6) }));
    else if (max != null) parts.push(t('models.atMost', { max: format.number(max, 6) }));
    return parts.length ? parts.join(' · ') : undefined;
  }

  const hasProblems = Object.keys(problems).length > 0;

  return (
    <Form
      className="schema-form"
      validationBehavior="aria"
      onSubmit={(event) => {
        event.preventDefault();
        const checked = validateRecord(fields, values);
        setProblems(checked.problems);
        if (Object.keys(checked.problems).length === 0) onSubmit(checked.record);
        else {
          const first = fields.find((f) => f.name in checked.problems);
          const element = first
            ? (event.currentTarget.elements.namedItem(first.name) as HTMLElement | null)
            : null;
          element?.focus?.();
        }
      }}
    >
      <p className="muted small">{t('tryit.requiredNote')}</p>
      {hasProblems ? (
        <p className="field-error" role="alert">
          {t('tryit.fixErrors')}
        </p>
      ) : null}
      {serverErrors._form ? (
        <p className="field-error" role="alert">
          {serverErrors._form}
        </p>
      ) : null}
      {fields.map((field) => {
        const value = values[field.name];
        if (field.type === 'boolean') {
          return (
            <BooleanField
              key={field.name}
              field={field}
              value={value === true}
              onChange={(next) => set(field.name, next)}
              error={errorOf(field.name)}
            />
          );
        }
        if (field.enum && field.enum.length > 0) {
          return (
            <SelectField
              key={field.name}
              field={field}
              value={typeof value === 'string' ? value : ''}
              onChange={(next) => set(field.name, next)}
              error={errorOf(field.name)}
            />
          );
        }
        const numeric = field.type === 'number' || field.type === 'integer';
        return (
          <Field
            key={field.name}
            label={fieldLabel(field)}
            name={field.name}
            value={typeof value === 'string' ? value : ''}
            onChange={(next) => set(field.name, next)}
            isRequired={isRequired(field)}
            description={hint(field)}
            error={errorOf(field.name)}
            {...(numeric ? { inputMode: field.type === 'integer' ? 'numeric' : 'decimal' } : {})}
          />
        );
      })}
      <Button type="submit" className="button" isDisabled={isSubmitting}>
        {submitLabel}
      </Button>
    </Form>
  );
}
