import {
  Alert,
  Badge,
  Button,
  Card,
  Code,
  Group,
  List,
  Select,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useCallback, useEffect, useState } from 'react';
import { useSession } from '../context.js';
import { OutcomeStatus, useStep, type Outcome } from '../parts.js';

interface Library {
  version: string;
  validation: { status: string; published?: string; error?: string };
  policies: { id: string; kind: string; effect: string; reason: string; file: string; line: number }[];
  files: { path: string; text: string }[];
}

interface TestRun {
  version: string;
  passed: boolean;
  total: number;
  failed: number;
  files: { file: string; results: { name: string; passed: boolean; problems: string[] }[] }[];
}

interface ChangeGroup {
  count: number;
  rules: { rule: string; count: number; examples: string[] }[];
}

interface Simulation {
  active: string;
  candidate: string;
  since: string;
  total: number;
  unchanged: number;
  changes: Record<'allow_to_deny' | 'deny_to_allow' | 'row_filter_changed', ChangeGroup>;
}

const changeTitles = {
  allow_to_deny: 'allow → deny',
  deny_to_allow: 'deny → allow',
  row_filter_changed: 'row filter changed',
} as const;

/** The files of the candidate that differ from the library in force: what the policy API takes. */
export function candidateOf(
  active: readonly { path: string; text: string }[],
  edited: Readonly<Record<string, string>>,
): Record<string, string> {
  const inForce = new Map(active.map((file) => [file.path, file.text]));
  return Object.fromEntries(Object.entries(edited).filter(([path, text]) => inForce.get(path) !== text));
}

/**
 * The admin's policy library: the version in force and its text, its tests, a candidate simulated
 * against recorded traffic, and a publish with a reason (the policy admin API, every call audited).
 */
export function Policies() {
  const session = useSession();
  const [library, setLibrary] = useState<Library | undefined>();
  const [file, setFile] = useState<string | null>(null);
  const [edited, setEdited] = useState<Record<string, string>>({});
  const [since, setSince] = useState<string | null>('7d');
  const [tests, setTests] = useState<TestRun | undefined>();
  const [simulation, setSimulation] = useState<Simulation | undefined>();
  const [reason, setReason] = useState('');
  const [outcome, setOutcome] = useState<Outcome | undefined>();
  const { busy, run: call } = useStep((text) =>
    setOutcome(text === undefined ? undefined : { color: 'red', text }),
  );
  // After a publish, the servers take up the new version within a second: read until it is in force.
  const load = useCallback(
    async (expected?: string) => {
      let answer = await session.api<Library>('/admin/v1/policies');
      for (let tries = 0; expected !== undefined && answer.version !== expected && tries < 10; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        answer = await session.api<Library>('/admin/v1/policies');
      }
      setLibrary(answer);
      setEdited({});
      setFile((current) => current ?? answer.files.find((f) => f.path.startsWith('runtime/'))?.path ?? null);
    },
    [session],
  );
  useEffect(() => void load(), [load]);
  if (!library) return <Text>Loading the policy library…</Text>;

  const candidate = candidateOf(library.files, edited);
  const changed = Object.keys(candidate);
  const text = file === null ? '' : (edited[file] ?? library.files.find((f) => f.path === file)?.text ?? '');
  const runTests = () =>
    call(async () => {
      const body = changed.length > 0 ? { files: candidate } : {};
      setTests(await session.api<TestRun>('/admin/v1/policies/test', { method: 'POST', body }));
    });
  const simulate = () =>
    call(async () => {
      setSimulation(
        await session.api<Simulation>('/admin/v1/policies/simulate', {
          method: 'POST',
          body: { files: candidate, since: since ?? '7d' },
        }),
      );
    });
  const publish = () =>
    call(async () => {
      const answer = await session.api<{ version: string; previous: string }>('/admin/v1/policies/publish', {
        method: 'POST',
        body: { files: candidate, reason },
      });
      setOutcome({ color: 'green', text: `Published ${answer.version} (was ${answer.previous}).` });
      setReason('');
      setTests(undefined);
      setSimulation(undefined);
      await load(answer.version);
    });

  return (
    <Stack>
      <Title order={1}>Policies</Title>
      <Group>
        <Text>
          In force: <Code data-testid="policy-version">{library.version}</Code>
        </Text>
        <Badge color={library.validation.status === 'valid' ? 'green' : 'red'} variant="light">
          {library.validation.status}
        </Badge>
      </Group>
      {library.validation.error && <Alert color="red">{library.validation.error}</Alert>}
      <OutcomeStatus outcome={outcome} label="Policy changes" />

      <Card withBorder component="section" aria-labelledby="candidate-title">
        <Title order={2} size="h3" id="candidate-title">
          Candidate
        </Title>
        <Text size="sm" mb="sm">
          Edit any file; the candidate is the files that differ from the library in force
          {changed.length > 0 ? `: ${changed.join(', ')}` : ' (none yet)'}.
        </Text>
        <Select
          label="Policy file"
          data={library.files.map((f) => ({
            value: f.path,
            label: `${f.path}${candidate[f.path] ? ' (edited)' : ''}`,
          }))}
          value={file}
          onChange={setFile}
          allowDeselect={false}
          searchable
        />
        {file !== null && (
          <Textarea
            label={`Text of ${file}`}
            value={text}
            onChange={(e) => {
              const value = e.currentTarget.value;
              setEdited((all) => ({ ...all, [file]: value }));
            }}
            autosize
            minRows={8}
            maxRows={24}
            styles={{ input: { fontFamily: 'monospace' } }}
            mt="sm"
          />
        )}
        <Group mt="sm" align="end">
          <Button variant="default" loading={busy} onClick={() => void runTests()}>
            Run tests
          </Button>
          <Select
            label="Recorded traffic since"
            data={[
              { value: '1h', label: 'the last hour' },
              { value: '24h', label: 'the last day' },
              { value: '7d', label: 'the last week' },
            ]}
            value={since}
            onChange={setSince}
            allowDeselect={false}
            w={180}
          />
          <Button
            variant="default"
            loading={busy}
            disabled={changed.length === 0}
            onClick={() => void simulate()}
          >
            Simulate
          </Button>
        </Group>
        <Group mt="sm" align="end">
          <TextInput
            label="Reason for publishing"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            w={420}
          />
          <Button
            loading={busy}
            disabled={changed.length === 0 || reason.trim() === ''}
            onClick={() => void publish()}
          >
            Publish
          </Button>
        </Group>
      </Card>

      {tests && <TestResults run={tests} />}
      {simulation && <SimulationResults simulation={simulation} />}

      <Title order={2}>Policies in force</Title>
      <Table aria-label="Policies in force" striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Policy</Table.Th>
            <Table.Th>Effect</Table.Th>
            <Table.Th>Why</Table.Th>
            <Table.Th>Where</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {library.policies.map((p) => (
            <Table.Tr key={p.id}>
              <Table.Td>{p.id}</Table.Td>
              <Table.Td>{p.effect}</Table.Td>
              <Table.Td>{p.reason}</Table.Td>
              <Table.Td>
                {p.file}:{p.line}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function TestResults({ run }: { run: TestRun }) {
  const failing = run.files.flatMap((f) =>
    f.results.filter((r) => !r.passed).map((r) => ({ ...r, file: f.file })),
  );
  return (
    <Card withBorder component="section" aria-labelledby="tests-title" data-testid="policy-tests">
      <Title order={2} size="h3" id="tests-title">
        Tests of {run.version}
      </Title>
      <Text data-passed={run.passed}>
        {run.total - run.failed} of {run.total} cases pass{run.passed ? '.' : `; ${run.failed} fail:`}
      </Text>
      <List size="sm">
        {failing.map((r) => (
          <List.Item key={`${r.file}/${r.name}`}>
            {r.file}: {r.name} — {r.problems.join('; ')}
          </List.Item>
        ))}
      </List>
    </Card>
  );
}

function SimulationResults({ simulation }: { simulation: Simulation }) {
  return (
    <Card withBorder component="section" aria-labelledby="simulation-title" data-testid="simulation">
      <Title order={2} size="h3" id="simulation-title">
        {simulation.candidate} against recorded traffic
      </Title>
      <Text size="sm">
        {simulation.total} decisions recorded since {new Date(simulation.since).toLocaleString()} replayed;{' '}
        {simulation.unchanged} unchanged.
      </Text>
      <Table aria-label="Decisions that would change" mt="sm">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Change</Table.Th>
            <Table.Th>Rule</Table.Th>
            <Table.Th>Decisions</Table.Th>
            <Table.Th>Example requests</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(Object.keys(changeTitles) as (keyof typeof changeTitles)[]).flatMap((kind) => {
            const group = simulation.changes[kind];
            if (group.count === 0) {
              return [
                <Table.Tr key={kind}>
                  <Table.Td>{changeTitles[kind]}</Table.Td>
                  <Table.Td>—</Table.Td>
                  <Table.Td>0</Table.Td>
                  <Table.Td>—</Table.Td>
                </Table.Tr>,
              ];
            }
            return group.rules.map((rule) => (
              <Table.Tr key={`${kind}/${rule.rule}`} data-change={kind}>
                <Table.Td>{changeTitles[kind]}</Table.Td>
                <Table.Td>{rule.rule}</Table.Td>
                <Table.Td>{rule.count}</Table.Td>
                <Table.Td>
                  {rule.examples.map((id) => (
                    <Code key={id} mr="xs">
                      {id}
                    </Code>
                  ))}
                </Table.Td>
              </Table.Tr>
            ));
          })}
        </Table.Tbody>
      </Table>
    </Card>
  );
}
