import { describe, expect, it } from 'vitest';
import { fieldErrors } from './problem';

describe('fieldErrors', () => {
  it('maps server paths onto form fields and keeps the rest for the form', () => {
    const problem = {
      type: 'urn:assay:problem:validation-failed',
      title: 'Request validation failed',
      status: 422,
      errors: [
        { field: 'records.0.amount', code: 'maximum', message: 'must be at most 100' },
        { field: 'body.new_password', code: 'too_short', message: 'use at least 15 characters' },
        { field: null, code: 'rule_failed', message: 'runway must agree' },
      ],
    };
    expect(fieldErrors(problem, ['amount', 'new_password'])).toEqual({
      amount: 'must be at most 100',
      new_password: 'use at least 15 characters',
      _form: 'runway must agree',
    });
  });
});
