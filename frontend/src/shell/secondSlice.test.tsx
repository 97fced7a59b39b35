// The jobs, API keys and members pages follow the caller's permissions, and a new API
// key's secret is shown once.
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { App, makeQueryClient } from '../App';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

const KEY = {
  id: 'k1',
  key_id: 'abcd1234',
  name: 'ci',
  scopes: ['models:read'],
  allowed_cidrs: [],
  signing_required: false,
  created_at: '2026-12-01T10:00:00Z',
  expires_at: null,
  revoked_at: null,
  last_used_at: null,
  last_used_address: null,
};

function serveAs(permissions: string[]) {
  const posted: { path: string; body: unknown }[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (request.method === 'POST' && path === '/v1/org/api-keys') {
        posted.push({ path, body: await request.json() });
        return json({ ...KEY, id: 'k2', name: 'new', key: 'assay_sk_secret-value' }, 201);
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
      if (path === '/v1/org') return json({ id: 'o1', name: 'Org', slug: 'org' });
      if (path === '/v1/models') return json([]);
      if (path === '/v1/jobs') return json({ items: [], next_cursor: null });
      if (path === '/v1/org/api-keys') return json([KEY]);
      if (path === '/v1/org/roles')
        return json([
          { name: 'viewer', permissions: ['models:read', 'members:read'], builtin: true },
          { name: 'owner', permissions: ['models:read', 'org:manage'], builtin: true },
        ]);
      if (path === '/v1/org/members')
        return json([
          {
            user_id: 'u1',
            email: 'me@example.com',
            display_name: '',
            role: 'viewer',
            joined_at: '2026-12-01T10:00:00Z',
          },
          {
            user_id: 'u2',
            email: 'other@example.com',
            display_name: 'Other',
            role: 'viewer',
            joined_at: '2026-12-01T10:00:00Z',
          },
        ]);
      if (path === '/v1/org/invitations') return json([]);
      return json({ type: 'about:blank', title: 'nf', status: 404 }, 404);
    }),
  );
  return posted;
}

beforeAll(() => {
  // jsdom has no <dialog> behaviour.
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) {
    this.open = false;
  };
});
afterEach(() => vi.unstubAllGlobals());

function open(path: string) {
  history.replaceState(null, '', `/console${path}`);
  render(<App queryClient={makeQueryClient()} />);
}

describe('second slice pages and permissions', () => {
  it('shows the jobs list without the new-job form to a role that cannot submit', async () => {
    serveAs(['models:read', 'jobs:read']);
    open('/jobs');
    expect(await screen.findByText('No jobs yet.')).toBeInTheDocument();
    expect(screen.getByText(/needs the “jobs:write” permission/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Submit job' })).not.toBeInTheDocument();
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('link', { name: 'Jobs' })).toBeInTheDocument();
    expect(within(nav).queryByRole('link', { name: 'API keys' })).not.toBeInTheDocument();
    expect(within(nav).queryByRole('link', { name: 'Members' })).not.toBeInTheDocument();
  });

  it('offers only the scopes the caller holds, and shows a new key once', async () => {
    const posted = serveAs(['models:read', 'keys:manage']);
    const user = userEvent.setup();
    open('/api-keys');
    const scopes = await screen.findByRole('group', { name: 'Scopes' });
    const boxes = within(scopes).getAllByRole('checkbox');
    expect(boxes.map((box) => box.closest('label')?.textContent)).toEqual([
      'keys:manage',
      'models:read',
    ]);
    await user.type(screen.getByRole('textbox', { name: 'Name' }), 'new');
    await user.click(within(scopes).getByRole('checkbox', { name: 'models:read' }));
    await user.click(screen.getByRole('button', { name: 'Create key' }));
    const shown = await screen.findByRole('region', { name: 'Your new API key' });
    expect(posted[0]?.body).toEqual({
      name: 'new',
      scopes: ['models:read'],
      signing_required: false,
    });
    expect(within(shown).getByText('assay_sk_secret-value')).toBeInTheDocument();
    expect(within(shown).getByText(/you will not see it again/)).toBeInTheDocument();
    expect(screen.getByRole('heading', { name: 'Your new API key' })).toHaveFocus();
    await user.click(within(shown).getByRole('button', { name: 'I have stored it' }));
    expect(screen.queryByText('assay_sk_secret-value')).not.toBeInTheDocument();
    expect(screen.getByRole('heading', { name: 'New API key' })).toBeInTheDocument();
  });

  it('asks before revoking a key', async () => {
    serveAs(['models:read', 'keys:manage']);
    const user = userEvent.setup();
    open('/api-keys');
    await user.click(await screen.findByRole('button', { name: 'Revoke ci' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke this key?' });
    expect(dialog).toHaveAccessibleDescription(
      'Requests with the key “ci” are refused from now on. This cannot be undone.',
    );
    expect(within(dialog).getByRole('button', { name: 'Keep the key' })).toHaveFocus();
  });

  it('shows members read-only without members:manage', async () => {
    serveAs(['models:read', 'members:read']);
    open('/members');
    const table = await screen.findByRole('table', { name: 'Members' });
    expect(within(table).getByText('other@example.com')).toBeInTheDocument();
    expect(screen.getByText(/need the “members:manage” permission/)).toBeInTheDocument();
    expect(screen.queryByRole('combobox', { name: /Role of/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Remove/ })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Send invitation' })).not.toBeInTheDocument();
  });

  it('offers a manager only the roles within their own permissions, and not on themselves', async () => {
    serveAs(['models:read', 'members:read', 'members:manage']);
    open('/members');
    const role = await screen.findByRole('combobox', { name: 'Role of other@example.com' });
    expect(
      within(role)
        .getAllByRole('option')
        .map((o) => o.textContent),
    ).toEqual(['viewer']);
    expect(
      screen.queryByRole('combobox', { name: 'Role of me@example.com' }),
    ).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Remove other@example.com' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Remove me@example.com' })).not.toBeInTheDocument();
  });
});
