import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Button, Form } from 'react-aria-components';
import { useTranslation } from 'react-i18next';
import { api, call, type Schemas } from '../api/client';
import { fieldErrors, toProblem } from '../api/problem';
import { useSession } from '../auth/session';
import { useFormat } from '../i18n/format';
import { usePageTitle } from '../shell/usePageTitle';
import { ConfirmButton } from '../ui/ConfirmButton';
import { Field } from '../ui/Field';
import { Notice, ProblemAlert } from '../ui/ProblemAlert';

type Member = Schemas['MemberView'];
type Role = Schemas['RoleView'];

const MEMBERS = ['members'] as const;
const INVITATIONS = ['invitations'] as const;

/** Roles the caller may hand out: none holding a permission the caller lacks. */
function useGrantableRoles(): Role[] {
  const { me } = useSession();
  const roles = useQuery({
    queryKey: ['roles'],
    queryFn: () => call(api.GET('/v1/org/roles')),
    staleTime: 300_000,
  });
  const held = new Set(me?.permissions ?? []);
  return (roles.data ?? []).filter((role) => role.permissions.every((p) => held.has(p)));
}

function RoleChanger({ member, roles }: { member: Member; roles: Role[] }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const id = useId();
  const [role, setRole] = useState(member.role);
  const change = useMutation({
    mutationFn: () =>
      call(
        api.PATCH('/v1/org/members/{user_id}', {
          params: { path: { user_id: member.user_id } },
          body: { role },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: MEMBERS }),
  });
  const names = roles.map((r) => r.name);
  if (!names.includes(member.role)) names.unshift(member.role);
  return (
    <form
      className="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        change.mutate();
      }}
    >
      <label htmlFor={id} className="visually-hidden">
        {t('members.roleOf', { email: member.email })}
      </label>
      <select id={id} value={role} onChange={(e) => setRole(e.target.value)}>
        {names.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      <button
        type="submit"
        className="button button-secondary"
        disabled={role === member.role || change.isPending}
        aria-label={`${t('members.saveRole')} ${member.email}`}
      >
        {t('members.saveRole')}
      </button>
      {change.isError ? <ProblemAlert problem={toProblem(change.error)} /> : null}
      {change.isSuccess ? (
        <span role="status" className="visually-hidden">
          {t('members.roleSaved', { email: member.email, role: change.data.role })}
        </span>
      ) : null}
    </form>
  );
}

function InviteForm({ roles }: { roles: Role[] }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const roleId = useId();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('viewer');
  const [sentTo, setSentTo] = useState<string | null>(null);
  const invite = useMutation({
    mutationFn: () =>
      call(api.POST('/v1/org/invitations', { body: { email: email.trim(), role } })),
    onSuccess: (invitation) => {
      setSentTo(invitation.email);
      setEmail('');
      void queryClient.invalidateQueries({ queryKey: INVITATIONS });
    },
  });
  const problem = invite.isError ? toProblem(invite.error) : undefined;
  const errors = fieldErrors(problem, ['email', 'role']);
  return (
    <section aria-labelledby="invite-heading">
      <h2 id="invite-heading">{t('members.invite')}</h2>
      <Form
        validationBehavior="aria"
        onSubmit={(event) => {
          event.preventDefault();
          setSentTo(null);
          invite.mutate();
        }}
      >
        <Field
          label={t('members.inviteEmail')}
          name="email"
          type="email"
          autoComplete="off"
          value={email}
          onChange={setEmail}
          isRequired
          error={errors.email}
        />
        <div className="field">
          <label htmlFor={roleId}>{t('members.inviteRole')}</label>
          <select id={roleId} value={role} onChange={(e) => setRole(e.target.value)}>
            {roles.map((r) => (
              <option key={r.name} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
          {errors.role ? <span className="field-error">{errors.role}</span> : null}
        </div>
        {problem && !errors.email && !errors.role ? <ProblemAlert problem={problem} /> : null}
        {sentTo ? <Notice>{t('members.invited', { email: sentTo })}</Notice> : null}
        <Button type="submit" className="button" isDisabled={invite.isPending}>
          {invite.isPending ? t('members.sending') : t('members.sendInvite')}
        </Button>
      </Form>
    </section>
  );
}

function Invitations() {
  const { t } = useTranslation();
  const format = useFormat();
  const queryClient = useQueryClient();
  const invitations = useQuery({
    queryKey: INVITATIONS,
    queryFn: () => call(api.GET('/v1/org/invitations')),
  });
  const revoke = useMutation({
    mutationFn: (id: string) =>
      call(
        api.DELETE('/v1/org/invitations/{invitation_id}', {
          params: { path: { invitation_id: id } },
        }),
      ),
    onSettled: () => queryClient.invalidateQueries({ queryKey: INVITATIONS }),
  });
  const items = invitations.data ?? [];
  return (
    <section aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">{t('members.invitations')}</h2>
      {invitations.isError ? <ProblemAlert problem={toProblem(invitations.error)} /> : null}
      {revoke.isError ? <ProblemAlert problem={toProblem(revoke.error)} /> : null}
      {invitations.isSuccess && items.length === 0 ? <p>{t('members.noInvitations')}</p> : null}
      {items.length > 0 ? (
        <div
          className="table-scroll"
          tabIndex={0}
          role="region"
          aria-label={t('members.invitations')}
        >
          <table className="data-table">
            <caption className="visually-hidden">{t('members.invitations')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('members.email')}</th>
                <th scope="col">{t('members.role')}</th>
                <th scope="col">{t('members.sent')}</th>
                <th scope="col">{t('members.expires')}</th>
                <th scope="col">
                  <span className="visually-hidden">{t('app.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((invitation) => (
                <tr key={invitation.id}>
                  <th scope="row">{invitation.email}</th>
                  <td>{invitation.role}</td>
                  <td>{format.dateTime(invitation.created_at)}</td>
                  <td>{format.dateTime(invitation.expires_at)}</td>
                  <td>
                    <ConfirmButton
                      label={t('members.revoke')}
                      nameSuffix={invitation.email}
                      title={t('members.revokeTitle')}
                      body={t('members.revokeBody', { email: invitation.email })}
                      confirmLabel={t('members.revokeConfirm')}
                      backLabel={t('members.revokeBack')}
                      onConfirm={() => revoke.mutateAsync(invitation.id).catch(() => undefined)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function MembersPage() {
  const { t } = useTranslation();
  const format = useFormat();
  const { me, can } = useSession();
  const queryClient = useQueryClient();
  usePageTitle(t('members.title'));
  const manage = can('members:manage');
  const roles = useGrantableRoles();
  const members = useQuery({
    queryKey: MEMBERS,
    queryFn: () => call(api.GET('/v1/org/members')),
  });
  const remove = useMutation({
    mutationFn: (id: string) =>
      call(api.DELETE('/v1/org/members/{user_id}', { params: { path: { user_id: id } } })),
    onSettled: () => queryClient.invalidateQueries({ queryKey: MEMBERS }),
  });
  const items = members.data ?? [];

  return (
    <div className="page">
      <h1>{t('members.title')}</h1>
      {!manage ? <p className="muted">{t('members.readOnly')}</p> : null}
      {members.isPending ? <p role="status">{t('app.loading')}</p> : null}
      {members.isError ? <ProblemAlert problem={toProblem(members.error)} /> : null}
      {remove.isError ? <ProblemAlert problem={toProblem(remove.error)} /> : null}
      {items.length > 0 ? (
        <div className="table-scroll" tabIndex={0} role="region" aria-label={t('members.title')}>
          <table className="data-table">
            <caption className="visually-hidden">{t('members.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('members.email')}</th>
                <th scope="col">{t('members.name')}</th>
                <th scope="col">{t('members.role')}</th>
                <th scope="col">{t('members.joined')}</th>
                {manage ? (
                  <th scope="col">
                    <span className="visually-hidden">{t('app.actions')}</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {items.map((member) => {
                const self = member.user_id === me?.id;
                return (
                  <tr key={member.user_id}>
                    <th scope="row">
                      {member.email}
                      {self ? ` ${t('members.you')}` : ''}
                    </th>
                    <td>{member.display_name || '—'}</td>
                    <td>
                      {manage && !self ? (
                        <RoleChanger member={member} roles={roles} />
                      ) : (
                        member.role
                      )}
                    </td>
                    <td>{format.dateTime(member.joined_at)}</td>
                    {manage ? (
                      <td>
                        {!self ? (
                          <ConfirmButton
                            label={t('members.remove')}
                            nameSuffix={member.email}
                            title={t('members.removeTitle')}
                            body={t('members.removeBody', { email: member.email })}
                            confirmLabel={t('members.removeConfirm')}
                            backLabel={t('members.back')}
                            onConfirm={() =>
                              remove.mutateAsync(member.user_id).catch(() => undefined)
                            }
                          />
                        ) : null}
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {manage ? (
        <>
          <InviteForm roles={roles} />
          <Invitations />
        </>
      ) : null}
    </div>
  );
}
