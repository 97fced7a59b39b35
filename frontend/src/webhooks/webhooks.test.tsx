// The webhooks page: event types as checkboxes, the guard's 422 on the URL field, the
// signing secret shown once, and no write actions without webhooks:manage.
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App, makeQueryClient } from '../App';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json' },
  });

const HOOK = {
  id: 'w1',
  url: 'https://hooks.example.com/in',
  event_types: ['scan.completed'],
  description: 'ops',
  enabled: true,
  disabled_reason: null,
  failure_streak: 0,
  created_by: 'u1',
  created_at: '2026-12-01T10:00:00Z',
  updated_at: '2026-12-01T10:00:00Z',
};

function serveAs(permissions: string[]) {
  const posted: unknown[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (request.method === 'POST' && path === '/v1/webhooks') {
        const body = (await request.json()) as { url: string };
        posted.push(body);
        if (body.url.includes('169.254'))
          return json(
            {
              type: 'urn:assay:problem:webhook-destination-refused',
              title: 'Webhook destination refused',
              status: 422,
              detail: 'The URL cannot be used: 169.254.169.254 resolves to a link-local address.',
              errors: [
                {
                  field: 'url',
                  code: 'address_refused',
                  message: '169.254.169.254 resolves to a link-local address',
                },
              ],
            },
            422,
          );
        return json({ ...HOOK, id: 'w2', url: body.url, secret: 'whsec_shown-once' }, 201);
      }
      if (path === '/v1/me')
        return json({
          id: 'u1',
          email: 'me@example.com',
          display_name: '',
          org_id: 'o1',
          permissions,
          mfa_enabled: false,
          is_platform_admin: false,
          scope: 'full',
        });
      if (path === '/v1/auth/csrf-token') return json({ csrf_token: '1.t', expires_in: 1 });
      if (path === '/v1/webhooks/event-types')
        return json([
          { name: 'scan.completed', description: 'A scan ended' },
          { name: 'watchlist.hit', description: 'A watchlist matched' },
        ]);
      if (path === '/v1/webhooks') return json([HOOK]);
      if (path === '/v1/webhooks/w1') return json(HOOK);
      if (path === '/v1/webhooks/w1/deliveries') return json({ items: [], next_cursor: null });
      return json({ type: 'about:blank', title: 'nf', status: 404 }, 404);
    }),
  );
  return posted;
}

afterEach(() => vi.unstubAllGlobals());

function open(path: string) {
  history.replaceState(null, '', `/console${path}`);
  render(<App queryClient={makeQueryClient()} />);
}

describe('webhooks', () => {
  it('shows the refused URL on its field, then the new secret once', async () => {
    const posted = serveAs(['models:read', 'webhooks:read', 'webhooks:manage']);
    const user = userEvent.setup();
    open('/webhooks');
    const types = await screen.findByRole('group', { name: 'Event types' });
    await within(types).findByRole('checkbox', { name: 'watchlist.hit' });
    await user.click(within(types).getByRole('checkbox', { name: 'scan.completed' }));
    const url = screen.getByRole('textbox', { name: 'Endpoint URL' });
    await user.type(url, 'http://169.254.169.254/');
    await user.click(screen.getByRole('button', { name: 'Create endpoint' }));
    expect(await screen.findByText('169.254.169.254 resolves to a link-local address')).toBe(
      document.getElementById(url.getAttribute('aria-describedby')?.split(' ').pop() ?? ''),
    );
    expect(url).toHaveAttribute('aria-invalid', 'true');

    await user.clear(url);
    await user.type(url, 'https://hooks.example.com/new');
    await user.click(screen.getByRole('button', { name: 'Create endpoint' }));
    const shown = await screen.findByRole('region', {
      name: 'Signing secret of https://hooks.example.com/new',
    });
    expect(within(shown).getByText('whsec_shown-once')).toBeInTheDocument();
    expect(posted[1]).toEqual({
      url: 'https://hooks.example.com/new',
      event_types: ['scan.completed'],
      description: '',
      enabled: true,
    });
    await user.click(within(shown).getByRole('button', { name: 'I have stored it' }));
    expect(screen.queryByText('whsec_shown-once')).not.toBeInTheDocument();
  });

  it('offers no write action to a role that can only read', async () => {
    serveAs(['models:read', 'webhooks:read']);
    open('/webhooks/w1');
    expect(
      await screen.findByText('Nothing was delivered to this endpoint yet.'),
    ).toBeInTheDocument();
    expect(screen.getByText(/need the “webhooks:manage” permission/)).toBeInTheDocument();
    for (const name of ['Disable', 'Send a test event', 'Rotate secret', 'Delete'])
      expect(screen.queryByRole('button', { name })).not.toBeInTheDocument();
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: 'Webhooks' })).toBeInTheDocument();
  });
});
