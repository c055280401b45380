import {
  Alert,
  Button,
  Card,
  Code,
  Group,
  List,
  Stack,
  Stepper,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useState } from 'react';
import { useSession } from '../context.js';
import { scopeLabel, when } from '../format.js';
import { PlainTable, useStep } from '../parts.js';

interface Preview {
  user: string;
  apps: { app_id: string; name: string; state: string; action: 'suspend' | 'transfer'; to?: string }[];
  grants: { app_id: string; scope: string; last_used_at: string }[];
  tokens_revoked: { apps: string[]; user: string };
  secrets: number;
}

interface Done {
  user: string;
  apps: { app_id: string; action: string; to?: string }[];
  secrets_removed: string[];
  archive: { file: string; events: number; checkpoint_size: number };
}

/**
 * Offboarding a person as a wizard: who leaves (and who takes their apps), then what will happen —
 * read from the server's dry run — and only then the offboarding itself, with a reason.
 */
export function Offboard() {
  const session = useSession();
  const [step, setStep] = useState(0);
  const [user, setUser] = useState('');
  const [transferTo, setTransferTo] = useState('');
  const [reason, setReason] = useState('');
  const [preview, setPreview] = useState<Preview | undefined>();
  const [done, setDone] = useState<Done | undefined>();
  const [error, setError] = useState<string | undefined>();
  const { busy, run: call } = useStep(setError);
  const who = { user: user.trim(), ...(transferTo.trim() && { transfer_to: transferTo.trim() }) };
  const look = () =>
    call(async () => {
      setPreview(await session.api<Preview>('/admin/v1/offboard/preview', { method: 'POST', body: who }));
      setStep(1);
    });
  const offboard = () =>
    call(async () => {
      setDone(await session.api<Done>('/admin/v1/offboard', { method: 'POST', body: { ...who, reason } }));
      setStep(2);
    });
  const restart = () => {
    setStep(0);
    setUser('');
    setTransferTo('');
    setReason('');
    setPreview(undefined);
    setDone(undefined);
  };

  return (
    <Stack>
      <Title order={1}>Offboarding</Title>
      <div role="status" aria-live="polite" aria-label="Offboarding">
        {error && <Alert color="red">{error}</Alert>}
        {done && (
          <Alert color="green">
            {done.user} is offboarded: {done.apps.length} apps{' '}
            {transferTo.trim() ? 'transferred' : 'suspended'}, tokens revoked, {done.secrets_removed.length}{' '}
            secrets removed.
          </Alert>
        )}
      </div>
      <Stepper
        active={step}
        allowNextStepsSelect={false}
        onStepClick={(s) => s < step && !done && setStep(s)}
      >
        <Stepper.Step label="Who leaves" description="and who takes their apps">
          <Stack maw={480} mt="md">
            <TextInput
              label="Email of the person leaving"
              value={user}
              onChange={(e) => setUser(e.currentTarget.value)}
            />
            <TextInput
              label="Hand their apps to (optional)"
              description="Without it, their apps are suspended."
              value={transferTo}
              onChange={(e) => setTransferTo(e.currentTarget.value)}
            />
            <Group>
              <Button loading={busy} disabled={user.trim() === ''} onClick={() => void look()}>
                Show what will happen
              </Button>
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="What will happen" description="nothing has changed yet">
          {preview && <PreviewCard preview={preview} />}
          <Group mt="md" align="end">
            <TextInput
              label="Reason for offboarding"
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              w={420}
            />
            <Button variant="default" onClick={() => setStep(0)}>
              Back
            </Button>
            <Button
              color="red"
              loading={busy}
              disabled={reason.trim() === ''}
              onClick={() => void offboard()}
            >
              Offboard {preview?.user}
            </Button>
          </Group>
        </Stepper.Step>
        <Stepper.Completed>
          {done && (
            <Card withBorder mt="md" component="section" aria-label="Offboarding done">
              <List size="sm">
                {done.apps.map((a) => (
                  <List.Item key={a.app_id}>
                    {a.app_id}: {a.action}
                    {a.to ? ` to ${a.to}` : ''}
                  </List.Item>
                ))}
                <List.Item>
                  Archive: <Code>{done.archive.file}</Code> ({done.archive.events} events, proven against a
                  checkpoint of {done.archive.checkpoint_size}); check it with{' '}
                  <Code>gatehouse offboard verify FILE</Code>.
                </List.Item>
              </List>
              <Button mt="md" variant="default" onClick={restart}>
                Offboard someone else
              </Button>
            </Card>
          )}
        </Stepper.Completed>
      </Stepper>
    </Stack>
  );
}

function PreviewCard({ preview }: { preview: Preview }) {
  return (
    <Card
      withBorder
      mt="md"
      component="section"
      aria-labelledby="preview-title"
      data-testid="offboard-preview"
    >
      <Title order={2} size="h3" id="preview-title">
        Offboarding {preview.user} will
      </Title>
      <Text fw={600} mt="sm">
        Apps they own
      </Text>
      {preview.apps.length === 0 ? (
        <Text size="sm">They own no apps.</Text>
      ) : (
        <PlainTable
          label="Apps they own"
          columns={['App', 'State now', 'Will be']}
          items={preview.apps}
          keyOf={(a) => a.app_id}
          cells={(a) => [
            a.name,
            a.state.replace('_', ' '),
            a.action === 'transfer' ? `transferred to ${a.to}` : 'suspended',
          ]}
        />
      )}
      <Text fw={600} mt="sm">
        Apps acting on their behalf (their sign-ins end)
      </Text>
      {preview.grants.length === 0 ? (
        <Text size="sm">None.</Text>
      ) : (
        <List size="sm" aria-label="Apps acting on their behalf">
          {preview.grants.map((g) => (
            <List.Item key={g.app_id}>
              {g.app_id}: {g.scope.split(' ').map(scopeLabel).join(', ')}; last used {when(g.last_used_at)}
            </List.Item>
          ))}
        </List>
      )}
      <Text fw={600} mt="sm">
        Tokens and secrets
      </Text>
      <List size="sm">
        <List.Item>
          Every token of{' '}
          {[...preview.tokens_revoked.apps.map((a) => `app ${a}`), `user ${preview.user}`].join(', ')} is
          revoked, and later sign-ins of {preview.user} are refused.
        </List.Item>
        <List.Item>{preview.secrets} secrets are removed.</List.Item>
        <List.Item>Their audit events are archived as a verifiable evidence bundle.</List.Item>
      </List>
    </Card>
  );
}
