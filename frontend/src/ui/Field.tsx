// Labelled text input with its help text and error tied by aria-describedby
// (react-aria-components does the wiring).
import { FieldError, Input, Label, Text, TextField } from 'react-aria-components';

export interface FieldProps {
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'email' | 'password';
  autoComplete?: string;
  inputMode?: 'text' | 'decimal' | 'numeric' | 'email';
  description?: string;
  error?: string | undefined;
  isRequired?: boolean;
  autoFocus?: boolean;
}

export function Field({
  label,
  name,
  value,
  onChange,
  type = 'text',
  autoComplete,
  inputMode,
  description,
  error,
  isRequired,
  autoFocus,
}: FieldProps) {
  return (
    <TextField
      className="field"
      name={name}
      value={value}
      onChange={onChange}
      type={type}
      isRequired={isRequired ?? false}
      isInvalid={Boolean(error)}
      validationBehavior="aria"
      autoFocus={autoFocus ?? false}
      {...(autoComplete ? { autoComplete } : {})}
      {...(inputMode ? { inputMode } : {})}
    >
      {/* The mark stays outside the label, so the accessible name is the label alone. */}
      <span className="label-row">
        <Label>{label}</Label>
        {isRequired ? (
          <span aria-hidden="true" className="required-mark">
            *
          </span>
        ) : null}
      </span>
      <Input />
      {description ? <Text slot="description">{description}</Text> : null}
      <FieldError className="field-error">{error}</FieldError>
    </TextField>
  );
}
