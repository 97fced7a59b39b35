import { render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App, makeQueryClient } from '../App';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

function serveAs(permissions: string[]) {
  vi.stubGlobal(
    'fetch',
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (path === '/v1/me')
        return json({
          id: '1',
          email: 'v@example.com',
          display_name: '',
          org_id: '2',
          permissions,
          mfa_enabled: false,
          is_platform_admin: false,
          scope: 'full',
        });
      if (path === '/v1/models/fraud')
        return json({
          id: '3',
          name: 'fraud',
          kind: 'rules',
          description: '',
          created_at: '2026-12-01T10:00:00Z',
          aliases: { production: 1 },
          versions: [
            {
              version: 1,
              status: 'healthy',
              status_reason: null,
              content_digest: 'abc123',
              artifact_digest: null,
              artifact_format: null,
              artifact_size: null,
              signed_by: null,
              created_at: '2026-12-01T10:00:00Z',
              created_by: null,
            },
          ],
          input_schema: { fields: [{ name: 'amount', type: 'number', minimum: 0 }] },
        });
      if (path === '/v1/auth/csrf-token') return json({ csrf_token: '1.t', expires_in: 1 });
      return json({ type: 'about:blank', title: 'nf', status: 404 }, 404);
    }),
  );
}

afterEach(() => vi.unstubAllGlobals());

describe('model detail and permissions', () => {
  it('offers "Try it" to a role that may predict', async () => {
    history.replaceState(null, '', '/console/models/fraud');
    serveAs(['models:read', 'predict', 'predictions:read']);
    render(<App queryClient={makeQueryClient()} />);
    expect(await screen.findByRole('link', { name: 'Try it' })).toHaveAttribute(
      'href',
      '/console/models/fraud/try',
    );
    expect(screen.getByRole('link', { name: 'Predictions' })).toBeInTheDocument();
    expect(screen.getByRole('table', { name: 'Input schema' })).toHaveTextContent('amount');
  });

  it('disables "Try it" with the reason for a viewer, and hides Predictions', async () => {
    history.replaceState(null, '', '/console/models/fraud');
    serveAs(['models:read']);
    render(<App queryClient={makeQueryClient()} />);
    const button = await screen.findByRole('button', { name: 'Try it' });
    expect(button).toBeDisabled();
    expect(button).toHaveAccessibleDescription(/needs the “predict” permission/);
    expect(screen.queryByRole('link', { name: 'Predictions' })).not.toBeInTheDocument();
  });
});
