import { Alert, Badge, Button, Card, Group, Stack, Text, Title } from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../context.js';
import { scopeLabel, when } from '../format.js';
import { OutcomeStatus, useChange } from '../parts.js';

interface Elevation {
  id: string;
  status: 'pending' | 'approved' | 'refused' | 'issued' | 'expired';
  requester: string;
  app_id: string;
  scope: string;
  justification: string;
  reviewer: string | null;
  created_at: string;
  expires_at: string;
}

/**
 * Just-in-time elevation requests waiting for a reviewer (the broker's /oauth/elevations). A reviewer
 * never decides their own request; the broker refuses it too, and says so in the trail.
 */
export function Elevations() {
  const session = useSession();
  const [requests, setRequests] = useState<Elevation[] | undefined>();
  const load = useCallback(
    () =>
      session
        .api<{ records: Elevation[] }>('/oauth/elevations?status=pending')
        .then((page) => setRequests(page.records.filter((r) => r.status === 'pending'))),
    [session],
  );
  useEffect(() => void load(), [load]);
  const { outcome, change } = useChange(load);
  const decide = (request: Elevation, decision: 'approve' | 'refuse') =>
    change(async () => {
      const decided = await session.api<Elevation>(`/oauth/elevations/${request.id}/${decision}`, {
        method: 'POST',
        body: {},
      });
      return `Elevation of ${request.requester} is ${decided.status}.`;
    });
  return (
    <Stack component="section" aria-labelledby="elevations-title">
      <Title order={2} id="elevations-title">
        Elevation requests
      </Title>
      <OutcomeStatus outcome={outcome} label="Elevation decisions" />
      {requests?.length === 0 && <Text>No elevation is waiting.</Text>}
      {requests?.map((request) => {
        const own = request.requester.toLowerCase() === session.me.email.toLowerCase();
        const titleId = `elevation-${request.id}`;
        return (
          <Card key={request.id} withBorder component="section" aria-labelledby={titleId}>
            <Group justify="space-between">
              <Title order={3} size="h4" id={titleId}>
                {request.requester} through {request.app_id}
              </Title>
              <Badge variant="dot" color="orange">
                lapses {when(request.expires_at)}
              </Badge>
            </Group>
            <Text size="sm">
              Asks for {request.scope.split(' ').map(scopeLabel).join(', ')} · {when(request.created_at)}
            </Text>
            <Text size="sm" mt="xs">
              “{request.justification}”
            </Text>
            {own ? (
              <Alert color="yellow" mt="sm" title="Separation of duties">
                This is your own request: another reviewer must decide on it.
              </Alert>
            ) : (
              <Group mt="sm">
                <Button
                  size="xs"
                  onClick={() => void decide(request, 'approve')}
                  aria-label={`Approve elevation of ${request.requester}`}
                >
                  Approve
                </Button>
                <Button
                  size="xs"
                  color="red.9"
                  onClick={() => void decide(request, 'refuse')}
                  aria-label={`Refuse elevation of ${request.requester}`}
                >
                  Refuse
                </Button>
              </Group>
            )}
          </Card>
        );
      })}
    </Stack>
  );
}
