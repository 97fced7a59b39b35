import { describe, expect, it } from 'vitest';
import {
  inputFields,
  isRequired,
  parseInputSchema,
  parseNumber,
  validateRecord,
} from './inputSchema';

describe('input schema', () => {
  it('reads the fields and leaves derived ones to the server', () => {
    const schema = parseInputSchema({
      fields: [
        { name: 'cash', type: 'number' },
        { name: 'runway', type: 'number', derive: { expr: 'cash / burn' } },
        { name: 'odd', type: 'date' },
      ],
    });
    expect(schema && inputFields(schema).map((f) => f.name)).toEqual(['cash']);
    expect(parseInputSchema(null)).toBeNull();
  });

  it('decides required like the server', () => {
    expect(isRequired({ name: 'a', type: 'number' })).toBe(true);
    expect(isRequired({ name: 'a', type: 'number', default: 1 })).toBe(false);
    expect(isRequired({ name: 'a', type: 'number', required: false })).toBe(false);
  });

  it('parses numbers typed in English or French', () => {
    expect(parseNumber('1234.5')).toBe(1234.5);
    expect(parseNumber('1 234,5')).toBe(1234.5);
    expect(parseNumber('12abc')).toBeNull();
  });

  it('checks string length and full-match patterns', () => {
    const fields = [{ name: 'code', type: 'string' as const, pattern: '[A-Z]{2}', max_length: 2 }];
    expect(validateRecord(fields, { code: 'GBX' }).problems.code).toEqual({
      code: 'max_length',
      limit: 2,
    });
    expect(validateRecord(fields, { code: 'gb' }).problems.code).toEqual({ code: 'pattern' });
    expect(validateRecord(fields, { code: 'GB' }).record).toEqual({ code: 'GB' });
  });
});
