import {
  Alert,
  Badge,
  Button,
  Group,
  Paper,
  Select,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { useSession } from '../context.js';
import { when } from '../format.js';
import {
  importVerifierKey,
  leafHash,
  openCheckpoint,
  toHex,
  verifyConsistency,
  verifyInclusion,
  type Checkpoint,
} from '../verify.js';

interface AuditRecord {
  index: number;
  leaf_hash: string;
  event: {
    timestamp: string;
    actor_id: string;
    actor_role: string;
    app_id: string;
    action: string;
    resource_type: string;
    resource_id: string;
    request_id: string;
    outcome: string;
    reason: string;
  };
}

type Mark =
  { state: 'verified' } | { state: 'rejected'; reason: string } | { state: 'pending'; reason: string };

const seenKey = 'gatehouse.console.checkpoints';

/** Checkpoints this browser has verified, oldest first: each later one must extend the one before. */
function seenCheckpoints(): { size: number; root: string }[] {
  return JSON.parse(sessionStorage.getItem(seenKey) ?? '[]') as { size: number; root: string }[];
}

/** The auditor's view: search the trail; every event is verified here, in the browser, against the signed log. */
export function Audit() {
  const session = useSession();
  const [keyText, setKeyText] = useState('');
  const [filters, setFilters] = useState({
    request_id: '',
    app_id: '',
    actor: '',
    outcome: null as string | null,
    since: '',
  });
  const [records, setRecords] = useState<AuditRecord[] | undefined>();
  const [marks, setMarks] = useState<Record<number, Mark>>({});
  const [log, setLog] = useState<{ color: string; text: string }[]>([]);
  const [problem, setProblem] = useState<string | undefined>();

  useEffect(() => {
    void session.text('/audit/v1/public-key').then(setKeyText);
  }, [session]);

  const search = async () => {
    setProblem(undefined);
    const query = new URLSearchParams({ limit: '200' });
    if (filters.request_id) query.set('request_id', filters.request_id.trim());
    if (filters.app_id) query.set('app_id', filters.app_id.trim());
    if (filters.since) query.set('since', new Date(filters.since).toISOString());
    try {
      const page = await session.api<{ records: AuditRecord[] }>(`/audit/v1/events?${query}`);
      const shown = page.records.filter(
        (r) =>
          (!filters.actor || r.event.actor_id.includes(filters.actor.trim())) &&
          (!filters.outcome || r.event.outcome === filters.outcome),
      );
      setRecords(shown);
      setMarks({});
      if (shown.length > 0) setMarks(await verify(shown));
    } catch (error) {
      setProblem((error as Error).message);
    }
  };

  /** Marks for the events shown, each checked against the newest signed checkpoint. */
  const verify = async (shown: AuditRecord[]): Promise<Record<number, Mark>> => {
    const imported = await importVerifierKey(keyText);
    if (!imported.ok) {
      setProblem(`verifier key: ${imported.reason}`);
      return {};
    }
    const opened = await openCheckpoint(await session.text('/audit/v1/checkpoint'), imported.value);
    if (!opened.ok) {
      setLog((l) => [...l, { color: 'red', text: `checkpoint rejected: ${opened.reason}` }]);
      return Object.fromEntries(shown.map((r) => [r.index, { state: 'rejected', reason: opened.reason }]));
    }
    const checkpoint = opened.value;
    await checkConsistency(checkpoint);
    const next: Record<number, Mark> = {};
    for (const record of shown) next[record.index] = await verifyOne(record, checkpoint);
    return next;
  };

  const checkConsistency = async (checkpoint: Checkpoint) => {
    const seen = seenCheckpoints();
    const last = seen.at(-1);
    const root = btoa(String.fromCharCode(...checkpoint.root));
    if (last && (last.size !== checkpoint.size || last.root !== root)) {
      const older = {
        origin: checkpoint.origin,
        size: last.size,
        root: Uint8Array.from(atob(last.root), (c) => c.charCodeAt(0)),
      };
      const proof =
        older.size < checkpoint.size
          ? (
              await session.api<{ hashes: unknown }>(
                `/audit/v1/proof/consistency?from=${older.size}&to=${checkpoint.size}`,
              )
            ).hashes
          : [];
      const consistent = await verifyConsistency(older, checkpoint, proof);
      setLog((l) => [
        ...l,
        consistent.ok
          ? {
              color: 'green',
              text: `checkpoint ${checkpoint.size} extends checkpoint ${older.size}: consistent`,
            }
          : {
              color: 'red',
              text: `checkpoint ${checkpoint.size} against ${older.size}: ${consistent.reason}`,
            },
      ]);
      if (!consistent.ok) return;
    } else if (!last) {
      setLog((l) => [
        ...l,
        { color: 'green', text: `checkpoint ${checkpoint.size} signed by the verifier key` },
      ]);
    }
    if (!last || last.size !== checkpoint.size) {
      sessionStorage.setItem(seenKey, JSON.stringify([...seen, { size: checkpoint.size, root }].slice(-20)));
    }
  };

  const verifyOne = async (record: AuditRecord, checkpoint: Checkpoint): Promise<Mark> => {
    // The leaf is hashed here from the event shown; the server's leaf_hash is only compared with it.
    const leaf = await leafHash(record.event);
    if (toHex(leaf) !== record.leaf_hash)
      return { state: 'rejected', reason: 'the event does not hash to its leaf' };
    if (record.index >= checkpoint.size)
      return { state: 'pending', reason: 'not yet in a signed checkpoint' };
    const proof = await session.api<{ hashes: unknown }>(
      `/audit/v1/proof/inclusion?index=${record.index}&size=${checkpoint.size}`,
    );
    const included = await verifyInclusion(
      record.index,
      checkpoint.size,
      leaf,
      proof.hashes,
      checkpoint.root,
    );
    return included.ok ? { state: 'verified' } : { state: 'rejected', reason: included.reason };
  };

  const exportShown = () => {
    const blob = new Blob([JSON.stringify(records ?? [], null, 2)], { type: 'application/json' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = 'audit-events.json';
    link.click();
    URL.revokeObjectURL(link.href);
  };

  const set = (key: keyof typeof filters) => (value: string | null) =>
    setFilters((f) => ({ ...f, [key]: value }));
  return (
    <Stack>
      <Title order={1}>Audit trail</Title>
      <Text>
        Each event is checked in this browser: its leaf hash, its inclusion proof and the checkpoint&apos;s
        Ed25519 signature, with the key below. Compare it with the one you pinned (
        <code>gatehouse audit public-key</code>).
      </Text>
      <TextInput label="Verifier key" value={keyText} onChange={(e) => setKeyText(e.currentTarget.value)} />
      <Paper
        withBorder
        p="md"
        component="form"
        aria-label="Search the audit trail"
        onSubmit={(e) => {
          e.preventDefault();
          void search();
        }}
      >
        <Group align="end">
          <TextInput
            label="Request id"
            value={filters.request_id}
            onChange={(e) => set('request_id')(e.currentTarget.value)}
          />
          <TextInput
            label="App"
            value={filters.app_id}
            onChange={(e) => set('app_id')(e.currentTarget.value)}
          />
          <TextInput
            label="Actor"
            value={filters.actor}
            onChange={(e) => set('actor')(e.currentTarget.value)}
          />
          <Select
            label="Outcome"
            data={['allow', 'deny', 'error']}
            value={filters.outcome}
            onChange={set('outcome')}
            clearable
          />
          <TextInput
            label="Since"
            type="datetime-local"
            value={filters.since}
            onChange={(e) => set('since')(e.currentTarget.value)}
          />
          <Button type="submit">Search</Button>
          <Button variant="default" onClick={exportShown} disabled={!records?.length}>
            Export
          </Button>
        </Group>
      </Paper>
      {problem && <Alert color="red">{problem}</Alert>}
      <div role="status" aria-live="polite" aria-label="Checkpoints">
        {log.map((line, i) => (
          <Text
            key={i}
            size="sm"
            c={
              line.color === 'red'
                ? 'var(--mantine-color-red-light-color)'
                : 'var(--mantine-color-green-light-color)'
            }
          >
            {line.text}
          </Text>
        ))}
      </div>
      <LiveTail verify={verify} me={session.me.email} ready={keyText !== ''} />
      <Evidence />
      {records && (
        <Table aria-label="Audit events" striped>
          <EventsHead />
          <Table.Tbody>
            {records.map((record) => (
              <EventRow key={record.index} record={record} mark={marks[record.index]} />
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

function EventsHead() {
  return (
    <Table.Thead>
      <Table.Tr>
        <Table.Th>#</Table.Th>
        <Table.Th>Time</Table.Th>
        <Table.Th>Actor</Table.Th>
        <Table.Th>App</Table.Th>
        <Table.Th>Action</Table.Th>
        <Table.Th>Outcome</Table.Th>
        <Table.Th>Reason</Table.Th>
        <Table.Th>Integrity</Table.Th>
      </Table.Tr>
    </Table.Thead>
  );
}

function EventRow({ record, mark }: { record: AuditRecord; mark: Mark | undefined }) {
  return (
    <Table.Tr data-request-id={record.event.request_id}>
      <Table.Td>{record.index}</Table.Td>
      <Table.Td>{when(record.event.timestamp)}</Table.Td>
      <Table.Td>{record.event.actor_id}</Table.Td>
      <Table.Td>{record.event.app_id}</Table.Td>
      <Table.Td>{record.event.action}</Table.Td>
      <Table.Td>{record.event.outcome}</Table.Td>
      <Table.Td>{record.event.reason}</Table.Td>
      <Table.Td data-integrity={mark?.state ?? 'checking'}>
        {!mark ? (
          'checking…'
        ) : (
          <Badge
            variant="dot"
            color={mark.state === 'verified' ? 'green' : mark.state === 'pending' ? 'gray' : 'red'}
          >
            {mark.state}
          </Badge>
        )}
        {mark && mark.state !== 'verified' && (
          <Text size="xs" mt={4}>
            {mark.reason}
          </Text>
        )}
      </Table.Td>
    </Table.Tr>
  );
}

/** How many events the live tail keeps on screen. */
const tailLength = 50;

/**
 * The live tail: new events as they are appended (polled every two seconds from the last index seen),
 * each verified like a search result; an event not yet in a signed checkpoint is checked again at the
 * next poll. The auditor's own reads of the trail (this poll among them) are left out.
 */
function LiveTail({
  verify,
  me,
  ready,
}: {
  verify: (shown: AuditRecord[]) => Promise<Record<number, Mark>>;
  me: string;
  ready: boolean;
}) {
  const session = useSession();
  const [on, setOn] = useState(false);
  const [tail, setTail] = useState<{ records: AuditRecord[]; marks: Record<number, Mark> }>({
    records: [],
    marks: {},
  });
  const [problem, setProblem] = useState<string | undefined>();
  // The latest verifier (it closes over the key field) without restarting the tail on each render.
  const checker = useRef(verify);
  checker.current = verify;
  useEffect(() => {
    if (!on || !ready) return;
    // undefined until the tail starts: then the index after which new events are read.
    let cursor: string | undefined;
    let started = false;
    let stopped = false;
    let held: { records: AuditRecord[]; marks: Record<number, Mark> } = { records: [], marks: {} };
    const poll = async () => {
      if (!started) {
        // Start at the end of the log as the newest checkpoint signed it; later events come at the next poll.
        const size = Number((await session.text('/audit/v1/checkpoint')).split('\n')[1]);
        cursor = size > 0 ? String(size - 1) : undefined;
        started = true;
      }
      const query = cursor === undefined ? 'limit=200' : `limit=200&cursor=${cursor}`;
      const page = await session.api<{ records: AuditRecord[] }>(`/audit/v1/events?${query}`);
      if (page.records.length > 0) cursor = String(page.records.at(-1)!.index);
      // A pruned event has no body to show or hash; the auditor's own reads would flood the tail.
      const fresh = page.records.filter(
        (r) => r.event !== undefined && !(r.event.actor_id === me && r.event.action.startsWith('audit.')),
      );
      const records = [...fresh.reverse(), ...held.records].slice(0, tailLength);
      const unsettled = records.filter((r) => held.marks[r.index]?.state !== 'verified');
      const marks =
        unsettled.length > 0 ? { ...held.marks, ...(await checker.current(unsettled)) } : held.marks;
      held = { records, marks };
      if (!stopped) setTail(held);
    };
    let polling = false;
    // One poll at a time: a slow one is not overtaken by the next tick.
    const run = () => {
      if (polling) return;
      polling = true;
      poll()
        .then(() => setProblem(undefined))
        .catch((error: unknown) => setProblem((error as Error).message))
        .finally(() => (polling = false));
    };
    run();
    const timer = setInterval(run, 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [on, ready, session, me]);
  return (
    <Stack component="section" aria-labelledby="tail-title" gap="xs">
      <Group>
        <Title order={2} size="h3" id="tail-title">
          Live tail
        </Title>
        <Switch label="Follow new events" checked={on} onChange={(e) => setOn(e.currentTarget.checked)} />
      </Group>
      {problem && <Alert color="red">{problem}</Alert>}
      {on && (
        <Table aria-label="New audit events" striped>
          <EventsHead />
          <Table.Tbody>
            {tail.records.length === 0 && (
              <Table.Tr>
                <Table.Td colSpan={8}>Waiting for new events…</Table.Td>
              </Table.Tr>
            )}
            {tail.records.map((record) => (
              <EventRow key={record.index} record={record} mark={tail.marks[record.index]} />
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

/** Incidents and their evidence bundles (signed checkpoint, events, proofs) to download and verify offline. */
function Evidence() {
  const session = useSession();
  const [incidents, setIncidents] = useState<
    { id: string; rule: string; app_id: string; state: string; opened_at: string }[]
  >([]);
  useEffect(() => {
    void session
      .api<{ records: typeof incidents }>('/admin/v1/incidents?limit=20')
      .then((page) => setIncidents(page.records));
  }, [session]);
  const download = async (id: string) => {
    const bundle = await session.api<unknown>(`/admin/v1/incidents/${id}/evidence`);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(
      new Blob([JSON.stringify(bundle, null, 2)], { type: 'application/json' }),
    );
    link.download = `evidence-${id}.json`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  if (incidents.length === 0) return null;
  return (
    <Table aria-label="Incidents and their evidence">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Incident</Table.Th>
          <Table.Th>Rule</Table.Th>
          <Table.Th>App</Table.Th>
          <Table.Th>State</Table.Th>
          <Table.Th>Opened</Table.Th>
          <Table.Th>Evidence</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {incidents.map((incident) => (
          <Table.Tr key={incident.id}>
            <Table.Td>{incident.id}</Table.Td>
            <Table.Td>{incident.rule}</Table.Td>
            <Table.Td>{incident.app_id}</Table.Td>
            <Table.Td>{incident.state}</Table.Td>
            <Table.Td>{when(incident.opened_at)}</Table.Td>
            <Table.Td>
              <Button
                size="xs"
                variant="default"
                onClick={() => void download(incident.id)}
                aria-label={`Download evidence of ${incident.id}`}
              >
                Download
              </Button>
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
