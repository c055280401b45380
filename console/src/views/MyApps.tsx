import { Badge, Button, Card, Group, List, Loader, Stack, Text, Title } from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../context.js';
import { scopeLabel, when } from '../format.js';
import { OutcomeStatus, useChange } from '../parts.js';

interface GrantedApp {
  app_id: string;
  name: string;
  purpose: string | null;
  status: string;
  scopes: string[];
  fields: Record<string, { object: string; fields: string[] }>;
  last_used_at: string;
  expires_at: string;
}

/** Everyone's view: the apps acting on my behalf, what they can see, and a button that ends it. */
export function MyApps() {
  const session = useSession();
  const [apps, setApps] = useState<GrantedApp[] | undefined>();
  const load = useCallback(
    () => session.api<{ records: GrantedApp[] }>('/admin/v1/me/apps').then((page) => setApps(page.records)),
    [session],
  );
  const { outcome, setOutcome, change } = useChange(load);
  useEffect(() => {
    load().catch((error: Error) => setOutcome({ color: 'red', text: error.message }));
  }, [load, setOutcome]);

  const revoke = (app: GrantedApp) =>
    change(async () => {
      await session.api(`/admin/v1/me/apps/${encodeURIComponent(app.app_id)}/revoke`, { method: 'POST' });
      return `${app.name} can no longer act for you. Its next call is refused.`;
    });

  return (
    <Stack>
      <Title order={1}>My apps</Title>
      <Text>
        These apps hold access to CRM data on your behalf. Revoking one ends its access at once: the tokens it
        holds stop working on every Gatehouse node.
      </Text>
      <OutcomeStatus outcome={outcome} />
      {apps === undefined ? (
        <Loader aria-label="Loading your apps" />
      ) : apps.length === 0 ? (
        <Text>No app holds access on your behalf.</Text>
      ) : (
        apps.map((app) => (
          <Card key={app.app_id} withBorder component="section" aria-labelledby={`app-${app.app_id}`}>
            <Group justify="space-between">
              <Title order={2} size="h3" id={`app-${app.app_id}`}>
                {app.name}
              </Title>
              <Badge variant="dot" color={app.status === 'approved' ? 'green' : 'orange'}>
                {app.status}
              </Badge>
            </Group>
            {app.purpose && <Text c="dimmed">{app.purpose}</Text>}
            <Text mt="sm" fw={600}>
              What it can see and do
            </Text>
            <List>
              {app.scopes.map((scope) => (
                <List.Item key={scope}>
                  {scopeLabel(scope)}
                  {app.fields[scope] && `: ${app.fields[scope].fields.join(', ')}`}
                </List.Item>
              ))}
            </List>
            <Text size="sm" mt="sm">
              Last used {when(app.last_used_at)} · access lapses {when(app.expires_at)}
            </Text>
            <Group mt="sm">
              <Button color="red.9" onClick={() => void revoke(app)} aria-label={`Revoke ${app.name}`}>
                Revoke
              </Button>
            </Group>
          </Card>
        ))
      )}
    </Stack>
  );
}
