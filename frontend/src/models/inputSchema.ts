// The registry's input-schema document (assay.engine.schema.definition) as the console
// reads it, and the client-side checks that mirror the server's per-field validation.

export type FieldType = 'number' | 'integer' | 'string' | 'boolean';
export type FieldValue = boolean | number | string;

export interface FieldSpec {
  name: string;
  type: FieldType;
  description?: string | null;
  unit?: string | null;
  required?: boolean | null;
  default?: FieldValue | null;
  minimum?: number | null;
  maximum?: number | null;
  enum?: FieldValue[] | null;
  pattern?: string | null;
  min_length?: number | null;
  max_length?: number | null;
  derive?: unknown;
  input?: boolean | null;
}

export interface InputSchema {
  description?: string | null;
  fields: FieldSpec[];
}

const TYPES: readonly string[] = ['number', 'integer', 'string', 'boolean'];

/** The schema document, or null when it is missing or not the shape we know. */
export function parseInputSchema(raw: unknown): InputSchema | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const fields = (raw as { fields?: unknown }).fields;
  if (!Array.isArray(fields)) return null;
  const parsed = fields.filter(
    (f): f is FieldSpec =>
      typeof f === 'object' &&
      f !== null &&
      typeof (f as FieldSpec).name === 'string' &&
      TYPES.includes((f as FieldSpec).type),
  );
  const description = (raw as { description?: unknown }).description;
  return { description: typeof description === 'string' ? description : null, fields: parsed };
}

/** Whether clients may supply the field (derived fields are computed by the server). */
export function acceptsInput(field: FieldSpec): boolean {
  return field.input ?? (field.derive === undefined || field.derive === null);
}

/** Same rule as FieldSpec.is_required on the server. */
export function isRequired(field: FieldSpec): boolean {
  if (field.required !== undefined && field.required !== null) return field.required;
  return (
    acceptsInput(field) && (field.default === undefined || field.default === null) && !field.derive
  );
}

export function inputFields(schema: InputSchema): FieldSpec[] {
  return schema.fields.filter(acceptsInput);
}

/** What the form holds: text for text boxes and selects, booleans for checkboxes. */
export type FormValues = Record<string, string | boolean>;

export function initialValues(fields: FieldSpec[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    if (field.type === 'boolean') values[field.name] = field.default === true;
    else
      values[field.name] =
        field.default === undefined || field.default === null ? '' : String(field.default);
  }
  return values;
}

export type FieldProblem =
  | { code: 'required' }
  | { code: 'number' }
  | { code: 'integer' }
  | { code: 'minimum'; limit: number }
  | { code: 'maximum'; limit: number }
  | { code: 'min_length'; limit: number }
  | { code: 'max_length'; limit: number }
  | { code: 'pattern' };

/** Numbers as typed in either language: "1 234,5" or "1234.5". */
export function parseNumber(text: string): number | null {
  const compact = text
    .trim()
    .replace(/[\s\u00a0\u202f]/g, '')
    .replace(',', '.');
  if (compact === '' || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(compact)) return null;
  const value = Number(compact);
  return Number.isFinite(value) ? value : null;
}

function enumValue(field: FieldSpec, text: string): FieldValue | undefined {
  return field.enum?.find((option) => String(option) === text);
}

/** Each field's first problem, and the record to send when there is none. */
export function validateRecord(
  fields: FieldSpec[],
  values: FormValues,
): { problems: Record<string, FieldProblem>; record: Record<string, FieldValue> } {
  const problems: Record<string, FieldProblem> = {};
  const record: Record<string, FieldValue> = {};
  for (const field of fields) {
    const raw = values[field.name];
    if (field.type === 'boolean') {
      record[field.name] = raw === true;
      continue;
    }
    const text = typeof raw === 'string' ? raw : '';
    if (text.trim() === '') {
      if (isRequired(field)) problems[field.name] = { code: 'required' };
      continue;
    }
    if (field.enum && field.enum.length > 0) {
      const chosen = enumValue(field, text);
      if (chosen !== undefined) record[field.name] = chosen;
      else problems[field.name] = { code: 'required' };
      continue;
    }
    if (field.type === 'number' || field.type === 'integer') {
      const value = parseNumber(text);
      if (value === null) {
        problems[field.name] = { code: 'number' };
      } else if (field.type === 'integer' && !Number.isInteger(value)) {
        problems[field.name] = { code: 'integer' };
      } else if (field.minimum != null && value < field.minimum) {
        problems[field.name] = { code: 'minimum', limit: field.minimum };
      } else if (field.maximum != null && value > field.maximum) {
        problems[field.name] = { code: 'maximum', limit: field.maximum };
      } else {
        record[field.name] = value;
      }
      continue;
    }
    const length = [...text].length;
    if (field.min_length != null && length < field.min_length) {
      problems[field.name] = { code: 'min_length', limit: field.min_length };
    } else if (field.max_length != null && length > field.max_length) {
      problems[field.name] = { code: 'max_length', limit: field.max_length };
    } else if (field.pattern && !matches(field.pattern, text)) {
      problems[field.name] = { code: 'pattern' };
    } else {
      record[field.name] = text;
    }
  }
  return { problems, record };
}

function matches(pattern: string, text: string): boolean {
  try {
    // The server uses RE2 fullmatch; JS regexps agree with RE2 on their common subset.
    return new RegExp(`^(?:${pattern})$`, 'u').test(text);
  } catch {
    return true; // A pattern JS cannot read is left to the server.
  }
}
