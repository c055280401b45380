import { Alert, Badge, Button, Card, Group, List, Stack, Text, Textarea, Title } from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../context.js';
import { when } from '../format.js';
import { OutcomeStatus, PlainTable, RuleList, useChange } from '../parts.js';
import type { AppView } from '../plan.js';
import { Elevations } from './Elevations.js';

/** One line of the plan diff: a field of the manifest, in force and asked for. */
export interface PlanChange {
  field: string;
  inForce: string;
  asked: string;
}

const show = (value: unknown): string =>
  value === undefined
    ? '—'
    : Array.isArray(value)
      ? value.join(', ') || '(none)'
      : typeof value === 'object' && value !== null
        ? JSON.stringify(value)
        : String(value);

/** The fields whose value differs between the plan in force (none for a new app) and the plan asked for. */
export function planDiff(
  inForce: Record<string, unknown> | undefined,
  asked: Record<string, unknown>,
): PlanChange[] {
  const fields = [...new Set([...Object.keys(inForce ?? {}), ...Object.keys(asked)])];
  return fields
    .map((field) => ({ field, inForce: inForce ? show(inForce[field]) : '—', asked: show(asked[field]) }))
    .filter((change) => change.inForce !== change.asked);
}

/** The reviewer's view: the queue, each plan against what is in force, and a decision with a reason. */
export function Review() {
  const session = useSession();
  const [queue, setQueue] = useState<AppView[] | undefined>();
  const load = useCallback(
    () =>
      session
        .api<{ records: AppView[] }>('/admin/v1/apps?needs_review=true')
        .then((page) => setQueue(page.records)),
    [session],
  );
  useEffect(() => void load(), [load]);
  const { outcome, change } = useChange(load);

  const decide = (app: AppView, step: 'approve' | 'deny', reason: string) =>
    change(async () => {
      const changed = await session.api<AppView>(`/admin/v1/apps/${app.id}/${step}`, {
        method: 'POST',
        body: { reason },
      });
      return `${app.name} is now ${changed.state.replace('_', ' ')}.`;
    });

  return (
    <Stack>
      <Title order={1}>Review queue</Title>
      <Text>
        Plans the admission policy sent to a person. You never decide on an app you own or registered.
      </Text>
      <OutcomeStatus outcome={outcome} />
      {queue?.length === 0 && <Text>The queue is empty.</Text>}
      {queue?.map((app) => (
        <ReviewCard key={app.id} app={app} me={session.me.email} onDecide={decide} />
      ))}
      <Elevations />
    </Stack>
  );
}

function ReviewCard({
  app,
  me,
  onDecide,
}: {
  app: AppView;
  me: string;
  onDecide: (app: AppView, step: 'approve' | 'deny', reason: string) => Promise<void>;
}) {
  const session = useSession();
  const [reason, setReason] = useState('');
  const [history, setHistory] = useState<NonNullable<AppView['history']>>([]);
  useEffect(() => {
    void session
      .api<AppView>(`/admin/v1/apps/${app.id}`)
      .then((found) => setHistory(found.history ?? []))
      .catch(() => setHistory([]));
  }, [session, app.id, app.state]);
  const comments = history.filter((entry) => entry.reason.trim() !== '');
  const pending = app.pending_change;
  // A new app has no plan in force; an approved app with a wider plan waits with it as pending_change.
  const asked = (pending?.manifest ?? app.manifest) as Record<string, unknown>;
  const inForce = pending ? app.manifest : undefined;
  const admission = (pending as { admission?: AppView['admission'] } | null)?.admission ?? app.admission;
  const rules = admission?.rules.filter((rule) => rule.effect !== 'permit') ?? [];
  const own = [app.owner, app.requested_by].map((who) => who.toLowerCase()).includes(me.toLowerCase());
  const titleId = `review-${app.id}`;
  return (
    <Card withBorder component="section" aria-labelledby={titleId}>
      <Group justify="space-between">
        <Title order={2} size="h3" id={titleId}>
          {app.name}
        </Title>
        <Group gap="xs">
          <Badge
            variant="dot"
            color={app.risk === 'high' ? 'red' : app.risk === 'medium' ? 'orange' : 'green'}
          >
            risk {app.risk ?? 'unknown'} ({app.risk_score ?? '?'})
          </Badge>
          <Badge variant="dot" color="gray">
            {pending ? 'plan change' : 'new app'}
          </Badge>
        </Group>
      </Group>
      <Text size="sm">
        owner {app.owner} · asked by {app.requested_by}
      </Text>
      <Text fw={600} mt="sm">
        Why it is here
      </Text>
      <RuleList rules={rules} />
      <PlainTable
        mt="sm"
        label={`Plan of ${app.name} against the plan in force`}
        columns={['Field', 'In force', 'Asked for']}
        items={planDiff(inForce, asked)}
        keyOf={(change) => change.field}
        cells={(change) => [change.field, change.inForce, change.asked]}
      />
      <Text fw={600} mt="sm">
        Comments so far
      </Text>
      {comments.length === 0 ? (
        <Text size="sm">None yet.</Text>
      ) : (
        <List size="sm" aria-label={`Comments on ${app.name}`}>
          {comments.map((entry, i) => (
            <List.Item key={i}>
              {when(entry.at)} · {entry.actor} · {entry.from_state.replace('_', ' ')} →{' '}
              {entry.to_state.replace('_', ' ')}: {entry.reason}
            </List.Item>
          ))}
        </List>
      )}
      {own ? (
        <Alert color="yellow" mt="sm" title="Separation of duties">
          You own or registered {app.name}, so another reviewer must decide on it.
        </Alert>
      ) : (
        <Stack mt="sm" gap="xs">
          <Textarea
            label={`Reason for your decision on ${app.name}`}
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            required
          />
          <Group>
            <Button disabled={reason.trim() === ''} onClick={() => void onDecide(app, 'approve', reason)}>
              Approve
            </Button>
            <Button
              color="red.9"
              disabled={reason.trim() === ''}
              onClick={() => void onDecide(app, 'deny', reason)}
            >
              Refuse
            </Button>
          </Group>
        </Stack>
      )}
    </Card>
  );
}
