import { Badge, Button, Code, Group, Stack, Text, TextInput, Title } from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../context.js';
import { when } from '../format.js';
import { OutcomeStatus, PlainTable, useChange } from '../parts.js';

interface SigningKey {
  kid: string;
  state: 'signing' | 'published' | 'retiring' | 'retired';
  created_at: string;
  sign_at: string;
  retire_at: string | null;
}

const stateColor = { signing: 'green', published: 'blue', retiring: 'orange', retired: 'gray' } as const;

/**
 * The broker's signing keys and their rotation: which key signs, which is published ahead of its
 * turn, which retire. Revoking one takes it out at once on every node; if it signed, a fresh key
 * signs from then on and every token it signed is refused.
 */
export function Keys() {
  const session = useSession();
  const [keys, setKeys] = useState<SigningKey[]>([]);
  const [reason, setReason] = useState('');
  const load = useCallback(
    () => session.api<{ records: SigningKey[] }>('/admin/v1/keys').then((page) => setKeys(page.records)),
    [session],
  );
  useEffect(() => void load(), [load]);
  const { outcome, change } = useChange(load);
  const rotate = () =>
    change(async () => {
      const answer = await session.api<{ kid: string }>('/admin/v1/keys/rotate', {
        method: 'POST',
        body: { reason },
      });
      setReason('');
      return `Key ${short(answer.kid)} published; it signs once verifiers have had time to fetch it.`;
    });
  const revoke = (key: SigningKey) =>
    change(async () => {
      const answer = await session.api<{ kid: string; signing_kid: string }>(
        `/admin/v1/keys/${key.kid}/revoke`,
        { method: 'POST', body: { reason } },
      );
      setReason('');
      return `Key ${short(answer.kid)} revoked; ${short(answer.signing_kid)} signs now.`;
    });
  return (
    <Stack>
      <Title order={1}>Signing keys</Title>
      <Text>
        The broker signs access tokens with one key and publishes the next one in its JWKS before it signs, so
        verifiers already know it; an old key keeps verifying until its tokens have expired. Rotation is on a
        schedule (<Code>broker.keyRotationDays</Code>); rotate now to publish the next key early, the old one
        verifying its tokens until they expire. Revoke a key that may have leaked: it stops signing and
        verifying at once, on every node.
      </Text>
      <Group align="end">
        <TextInput
          label="Reason for the key change"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          w={480}
        />
        <Button disabled={reason.trim() === ''} onClick={() => void rotate()}>
          Rotate now
        </Button>
      </Group>
      <OutcomeStatus outcome={outcome} label="Key changes" />
      <PlainTable
        label="Signing keys"
        striped
        columns={['Key id', 'State', 'Created', 'Signs from', 'Retires', 'Action']}
        items={keys}
        keyOf={(key) => key.kid}
        rowData={(key) => ({ 'data-kid': key.kid, 'data-state': key.state })}
        cells={(key) => [
          <Code key="kid">{key.kid}</Code>,
          <Badge key="state" color={stateColor[key.state]} variant="light">
            {key.state}
          </Badge>,
          when(key.created_at),
          Date.parse(key.sign_at) === 0 ? 'from the start' : when(key.sign_at),
          key.retire_at ? when(key.retire_at) : 'at the next rotation',
          key.state !== 'retired' && (
            <Group key="action" gap="xs">
              <Button
                size="xs"
                color="red"
                variant="light"
                disabled={reason.trim() === ''}
                aria-label={`Revoke key ${short(key.kid)}`}
                onClick={() => void revoke(key)}
              >
                Revoke
              </Button>
            </Group>
          ),
        ]}
      />
    </Stack>
  );
}

const short = (kid: string) => kid.slice(0, 8);
