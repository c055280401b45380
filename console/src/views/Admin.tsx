import { Badge, Button, Card, Grid, Group, List, Stack, Text, TextInput, Title } from '@mantine/core';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Colors,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useSession } from '../context.js';
import { when } from '../format.js';
import { decisionsPerApp, recordsReadPerApp, topSensitiveApps } from '../metrics.js';
import { OutcomeStatus, PlainTable, useChange } from '../parts.js';
import type { AppView } from '../plan.js';

Chart.register(
  Colors,
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

interface Incident {
  id: string;
  rule: string;
  actor: string;
  app_id: string;
  severity: string;
  state: string;
  summary: string;
  detections: number;
  containment: { action: string; target: string; status: string; detail: string }[];
  opened_at: string;
}

/** Containment an admin can lift: throttles and suspensions still applied (revocations stay). */
const liftable = (incident: Incident) =>
  incident.containment.some((c) => c.status === 'applied' && /throttle|suspend/.test(c.action));

/** The admin's view: incidents with their containment and restore, and live dashboards. */
export function Admin() {
  const session = useSession();
  const [incidents, setIncidents] = useState<Incident[]>([]);
  const load = useCallback(
    () =>
      session
        .api<{ records: Incident[] }>('/admin/v1/incidents?limit=50')
        .then((page) => setIncidents(page.records)),
    [session],
  );
  const { outcome, change } = useChange(load);
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), 5000);
    return () => clearInterval(timer);
  }, [load]);

  const restore = (incident: Incident, reason: string) =>
    change(async () => {
      await session.api(`/admin/v1/incidents/${incident.id}/restore`, { method: 'POST', body: { reason } });
      return `Incident ${incident.id}: containment lifted.`;
    });

  return (
    <Stack>
      <Title order={1}>Incidents &amp; dashboards</Title>
      <OutcomeStatus outcome={outcome} />
      <Title order={2}>Incidents</Title>
      {incidents.length === 0 && <Text>No incidents.</Text>}
      {incidents.map((incident) => (
        <IncidentCard key={incident.id} incident={incident} onRestore={restore} />
      ))}
      <AppsPanel />
      <Dashboards incidents={incidents} />
    </Stack>
  );
}

function IncidentCard({
  incident,
  onRestore,
}: {
  incident: Incident;
  onRestore: (i: Incident, reason: string) => Promise<void>;
}) {
  const [reason, setReason] = useState('');
  const titleId = `incident-${incident.id}`;
  return (
    <Card withBorder component="section" aria-labelledby={titleId}>
      <Group justify="space-between">
        <Title order={3} size="h4" id={titleId}>
          {incident.rule} · {incident.app_id}
        </Title>
        <Group gap="xs">
          <Badge variant="dot" color={incident.severity === 'high' ? 'red' : 'orange'}>
            {incident.severity}
          </Badge>
          <Badge variant="dot" color={incident.state === 'closed' ? 'gray' : 'red'}>
            {incident.state}
          </Badge>
        </Group>
      </Group>
      <Text size="sm">
        {incident.summary} · actor {incident.actor} · opened {when(incident.opened_at)} · {incident.id}
      </Text>
      <Text fw={600} mt="xs">
        Containment
      </Text>
      <List size="sm" data-testid={`containment-${incident.id}`}>
        {incident.containment.map((c, i) => (
          <List.Item key={i}>
            {c.action} {c.target}: {c.status}
          </List.Item>
        ))}
      </List>
      {liftable(incident) && (
        <Group mt="sm" align="end">
          <TextInput
            label={`Reason to restore ${incident.id}`}
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
          />
          <Button disabled={reason.trim() === ''} onClick={() => void onRestore(incident, reason)}>
            Restore
          </Button>
        </Group>
      )}
    </Card>
  );
}

interface Point {
  at: string;
  perApp: Record<string, { requests: number; denials: number }>;
  reads: Record<string, { records: number; sensitive: number }>;
}

/** Requests and denials per app over time (from /metrics, polled), and detections by rule. */
function Dashboards({ incidents }: { incidents: Incident[] }) {
  const session = useSession();
  const [points, setPoints] = useState<Point[]>([]);
  useEffect(() => {
    const poll = () =>
      session.text('/metrics').then((text) =>
        setPoints((p) =>
          [
            ...p,
            {
              at: new Date().toLocaleTimeString(),
              perApp: decisionsPerApp(text),
              reads: recordsReadPerApp(text),
            },
          ].slice(-30),
        ),
      );
    void poll();
    const timer = setInterval(() => void poll(), 5000);
    return () => clearInterval(timer);
  }, [session]);

  const apps = [...new Set(points.flatMap((p) => Object.keys(p.perApp)))].sort();
  // Counters since the server started, one reading per poll: the slope is the traffic.
  const series = (key: 'requests' | 'denials') =>
    apps.map((app) => ({ label: `${app} ${key}`, data: points.map((p) => p.perApp[app]?.[key] ?? 0) }));
  const byRule = Object.entries(
    incidents.reduce<Record<string, number>>(
      (acc, i) => ({ ...acc, [i.rule]: (acc[i.rule] ?? 0) + i.detections }),
      {},
    ),
  );
  const latest = points.at(-1)?.perApp ?? {};
  const readers = [...new Set(points.flatMap((p) => Object.keys(p.reads)))].sort();
  const latestReads = points.at(-1)?.reads ?? {};
  const top = topSensitiveApps(latestReads);
  return (
    <Grid>
      <Grid.Col span={{ base: 12, md: 8 }}>
        <Title order={2}>Requests and denials per app, over time</Title>
        <ChartCanvas
          type="line"
          labels={points.map((p) => p.at)}
          datasets={[...series('requests'), ...series('denials')]}
          summary={`Since start: ${apps.map((a) => `${a} ${latest[a]?.requests ?? 0} requests, ${latest[a]?.denials ?? 0} denied`).join('; ') || 'no requests yet'}`}
        />
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 8 }}>
        <Title order={2}>Records read per app, over time</Title>
        <ChartCanvas
          type="line"
          labels={points.map((p) => p.at)}
          datasets={readers.map((app) => ({
            label: `${app} records`,
            data: points.map((p) => p.reads[app]?.records ?? 0),
          }))}
          summary={`Records read since start: ${readers.map((a) => `${a} ${latestReads[a]?.records ?? 0} records`).join('; ') || 'none yet'}`}
        />
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 4 }}>
        <Title order={2}>Top apps by sensitive reads</Title>
        <ChartCanvas
          type="bar"
          labels={top.map(([app]) => app)}
          datasets={[{ label: 'sensitive records read', data: top.map(([, n]) => n) }]}
          summary={`Sensitive records read: ${top.map(([app, n]) => `${app} ${n} sensitive`).join('; ') || 'none yet'}`}
        />
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 4 }}>
        <Title order={2}>Detections by rule</Title>
        <ChartCanvas
          type="bar"
          labels={byRule.map(([rule]) => rule)}
          datasets={[{ label: 'detections', data: byRule.map(([, n]) => n) }]}
          summary={byRule.map(([rule, n]) => `${rule}: ${n}`).join('; ') || 'no detections'}
        />
      </Grid.Col>
    </Grid>
  );
}

/** A Chart.js canvas; screen readers get the same numbers as text (the canvas is its image). */
function ChartCanvas(props: {
  type: 'line' | 'bar';
  labels: string[];
  datasets: { label: string; data: number[] }[];
  summary: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | undefined>(undefined);
  useEffect(() => {
    if (!canvas.current) return;
    chart.current = new Chart(canvas.current, {
      type: props.type,
      data: { labels: [], datasets: [] },
      options: { animation: false },
    });
    return () => chart.current?.destroy();
  }, [props.type]);
  useEffect(() => {
    if (!chart.current) return;
    chart.current.data = { labels: props.labels, datasets: props.datasets };
    chart.current.update();
  }, [props.labels, props.datasets]);
  return (
    <>
      <canvas ref={canvas} role="img" aria-label={props.summary} height={160} />
      <Text size="sm">{props.summary}</Text>
    </>
  );
}

/** Which lifecycle steps an admin may take from a state (the catalog refuses the others anyway). */
const stepsFrom: Record<string, readonly ('suspend' | 'restore' | 'retire')[]> = {
  approved: ['suspend', 'retire'],
  in_review: ['retire'],
  draft: ['retire'],
  suspended: ['restore', 'retire'],
};

/** Every app with its state; suspend, restore or retire one, with a reason that goes into the trail. */
function AppsPanel() {
  const session = useSession();
  const [apps, setApps] = useState<AppView[]>([]);
  const [reason, setReason] = useState('');
  const load = useCallback(
    () =>
      session.api<{ records: AppView[] }>('/admin/v1/apps?limit=100').then((page) => setApps(page.records)),
    [session],
  );
  useEffect(() => void load(), [load]);
  const { outcome, change } = useChange(load);
  const act = (app: AppView, step: 'suspend' | 'restore' | 'retire') =>
    change(async () => {
      const changed = await session.api<AppView>(`/admin/v1/apps/${app.id}/${step}`, {
        method: 'POST',
        body: { reason },
      });
      return `${app.name} is now ${changed.state}.`;
    });
  return (
    <Stack component="section" aria-labelledby="apps-title">
      <Title order={2} id="apps-title">
        Apps
      </Title>
      <TextInput
        label="Reason for a change to an app"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
      />
      <OutcomeStatus outcome={outcome} label="App changes" />
      <PlainTable
        label="Apps"
        striped
        columns={['App', 'Owner', 'State', 'Risk', 'Actions']}
        items={apps}
        keyOf={(app) => app.id}
        cells={(app) => [
          app.name,
          app.owner,
          app.state.replace('_', ' '),
          app.risk ?? '—',
          <Group key="actions" gap="xs">
            {(stepsFrom[app.state] ?? []).map((step) => (
              <Button
                key={step}
                size="xs"
                variant="default"
                disabled={reason.trim() === ''}
                aria-label={`${step} ${app.name}`}
                onClick={() => void act(app, step)}
              >
                {step}
              </Button>
            ))}
          </Group>,
        ]}
      />
    </Stack>
  );
}
