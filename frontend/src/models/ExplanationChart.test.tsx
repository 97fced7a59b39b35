import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ExplanationView } from './ExplanationChart';
import { readExplanation } from './explanation';

describe('ExplanationView', () => {
  it('gives feature contributions as a hidden chart and an accessible table', () => {
    const explanation = readExplanation({
      kind: 'features',
      space: 'log_odds',
      bias: -0.44,
      note: null,
      contributions: [
        { feature: 'burn_multiple', value: 1.85, contribution: 0.82 },
        { feature: 'customer_count', value: 120, contribution: -0.05 },
      ],
    });
    const { container } = render(<ExplanationView explanation={explanation!} />);
    expect(screen.getByRole('heading', { name: 'Feature contributions' })).toBeInTheDocument();
    expect(container.querySelector('.chart')).toHaveAttribute('aria-hidden', 'true');
    const table = screen.getByRole('table', { name: /Contribution of each feature/ });
    const rows = within(table).getAllByRole('row');
    expect(rows).toHaveLength(3);
    expect(within(rows[1]!).getByRole('rowheader')).toHaveTextContent('burn_multiple');
    expect(rows[1]).toHaveTextContent('0.82');
    expect(rows[2]).toHaveTextContent('-0.05');
    expect(screen.getByText('Bias: -0.44')).toBeInTheDocument();
  });

  it('lists the rules that fired with their points', () => {
    const explanation = readExplanation({
      kind: 'rules',
      combination: 'sum',
      total_points: 4.5,
      min_points: 0,
      max_points: 10,
      fired: [
        { rule: 'runway_18_plus', points: 3, description: 'At least 18 months', capped: false },
        { rule: 'unit_economics', points: 1.5, description: null, capped: true },
      ],
    });
    render(<ExplanationView explanation={explanation!} />);
    const table = screen.getByRole('table', { name: /total 4.5/ });
    expect(within(table).getByRole('rowheader', { name: /runway_18_plus/ })).toBeInTheDocument();
    expect(within(table).getByText('1.5 (capped)')).toBeInTheDocument();
  });

  it('shows ensemble components and each component’s own explanation', () => {
    const explanation = readExplanation({
      kind: 'ensemble',
      uncapped_score: 0.9,
      ceiling: null,
      components: [
        {
          name: 'pillar',
          score: 0.8,
          effective_score: 0.8,
          weight: 0.5,
          contribution: 0.4,
          explanation: { kind: 'rules', combination: 'sum', total_points: 0, fired: [] },
        },
      ],
    });
    render(<ExplanationView explanation={explanation!} />);
    const table = screen.getByRole('table', {
      name: 'Contribution of each component to the score',
    });
    expect(within(table).getByRole('rowheader', { name: 'pillar' })).toBeInTheDocument();
    expect(screen.getByText('No rule fired.')).toBeInTheDocument();
  });

  it('says so when a model gives no attribution', () => {
    render(
      <ExplanationView
        explanation={readExplanation({
          kind: 'features',
          contributions: null,
          note: 'ONNX graphs carry no attribution',
        })!}
      />,
    );
    expect(screen.getByText('ONNX graphs carry no attribution')).toBeInTheDocument();
  });
});
