import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { FieldSpec } from './inputSchema';
import { SchemaForm } from './SchemaForm';

const fields: FieldSpec[] = [
  { name: 'amount', type: 'number', minimum: 0, maximum: 100, unit: 'USD' },
  { name: 'count', type: 'integer', required: false },
  { name: 'country', type: 'string', enum: ['US', 'GB', 'DE'] },
  { name: 'verified', type: 'boolean', default: false },
  { name: 'note', type: 'string', required: false, max_length: 5 },
];

function setup(serverErrors?: Record<string, string>) {
  const onSubmit = vi.fn();
  const view = render(
    <SchemaForm
      fields={fields}
      onSubmit={onSubmit}
      submitLabel="Score"
      serverErrors={serverErrors ?? {}}
    />,
  );
  return { onSubmit, user: userEvent.setup(), ...view };
}

describe('SchemaForm', () => {
  it('renders one labelled control per field, by type', () => {
    setup();
    expect(screen.getByRole('textbox', { name: 'Amount (USD)' })).toBeInTheDocument();
    expect(screen.getByRole('textbox', { name: 'Count' })).toBeInTheDocument();
    const select = screen.getByRole('combobox', { name: 'Country' });
    expect(select).toHaveAttribute('aria-required', 'true');
    expect([...select.querySelectorAll('option')].map((o) => o.textContent)).toEqual([
      'Choose…',
      'US',
      'GB',
      'DE',
    ]);
    expect(screen.getByRole('checkbox', { name: 'Verified' })).not.toBeChecked();
  });

  it('marks required fields and refuses an empty submit', async () => {
    const { user, onSubmit } = setup();
    expect(screen.getByRole('textbox', { name: 'Amount (USD)' })).toBeRequired();
    expect(screen.getByRole('textbox', { name: 'Count' })).not.toBeRequired();
    await user.click(screen.getByRole('button', { name: 'Score' }));
    expect(onSubmit).not.toHaveBeenCalled();
    const amount = screen.getByRole('textbox', { name: 'Amount (USD)' });
    expect(amount).toHaveAttribute('aria-invalid', 'true');
    expect(amount).toHaveAccessibleDescription(expect.stringContaining('Enter a value.'));
    expect(screen.getByRole('combobox', { name: 'Country' })).toHaveAccessibleDescription(
      'Enter a value.',
    );
    expect(amount).toHaveFocus();
  });

  it('checks minimum, maximum and whole numbers like the server', async () => {
    const { user, onSubmit } = setup();
    const amount = screen.getByRole('textbox', { name: 'Amount (USD)' });
    await user.type(amount, '150');
    await user.type(screen.getByRole('textbox', { name: 'Count' }), '2.5');
    await user.selectOptions(screen.getByRole('combobox', { name: 'Country' }), 'GB');
    await user.click(screen.getByRole('button', { name: 'Score' }));
    expect(onSubmit).not.toHaveBeenCalled();
    expect(amount).toHaveAccessibleDescription(expect.stringContaining('Must be at most 100.'));
    expect(screen.getByRole('textbox', { name: 'Count' })).toHaveAccessibleDescription(
      'Enter a whole number.',
    );
    await user.clear(amount);
    await user.type(amount, '-1');
    await user.click(screen.getByRole('button', { name: 'Score' }));
    expect(amount).toHaveAccessibleDescription(expect.stringContaining('Must be at least 0.'));
  });

  it('sends typed values: numbers, the enum value and booleans', async () => {
    const { user, onSubmit } = setup();
    await user.type(screen.getByRole('textbox', { name: 'Amount (USD)' }), '42,5');
    await user.selectOptions(screen.getByRole('combobox', { name: 'Country' }), 'DE');
    await user.click(screen.getByRole('checkbox', { name: 'Verified' }));
    await user.click(screen.getByRole('button', { name: 'Score' }));
    expect(onSubmit).toHaveBeenCalledWith({ amount: 42.5, country: 'DE', verified: true });
  });

  it('shows server field errors on their fields until edited', async () => {
    const { user } = setup({ amount: 'must be at most 100', _form: 'runway must agree' });
    const amount = screen.getByRole('textbox', { name: 'Amount (USD)' });
    expect(amount).toHaveAttribute('aria-invalid', 'true');
    expect(amount).toHaveAccessibleDescription(expect.stringContaining('must be at most 100'));
    expect(screen.getByText('runway must agree')).toBeInTheDocument();
    await user.type(amount, '5');
    expect(amount).not.toHaveAttribute('aria-invalid', 'true');
  });
});
