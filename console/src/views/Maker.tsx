import {
  Alert,
  Badge,
  Button,
  Checkbox,
  FileInput,
  Grid,
  Group,
  List,
  MultiSelect,
  NumberInput,
  Paper,
  Select,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { useSession } from '../context.js';
import { scopeLabel, when } from '../format.js';
import {
  bundleMediaType,
  narrowerScopes,
  type AppView,
  type ScanSummary,
  type Verdict,
  type Vocabulary,
} from '../plan.js';
import { RuleList } from '../parts.js';
import { ApiProblem } from '../session.js';

const verdictColor = { approve: 'green', review: 'orange', deny: 'red', invalid: 'gray' } as const;
const verdictText = {
  approve: 'Approved on registration',
  review: 'Goes to a reviewer',
  deny: 'Refused',
  invalid: 'Not a complete plan yet',
} as const;

/** The maker's view: the registration form is the security plan, judged by the admission policy as it is typed. */
export function Maker() {
  const session = useSession();
  const [vocabulary, setVocabulary] = useState<Vocabulary | undefined>();
  const [apps, setApps] = useState<AppView[]>([]);
  const [plan, setPlan] = useState({
    name: '',
    purpose: '',
    scopes: [] as string[],
    data_classes: ['internal'] as string[],
    retention_days: 30 as number | string,
    expected_users: 10 as number | string,
    redirect_uris: '',
    consent_purpose: null as string | null,
    telemetry: true,
  });
  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const [outcome, setOutcome] = useState<{ color: string; text: string } | undefined>();
  const [bundle, setBundle] = useState<File | null>(null);
  const [scanned, setScanned] = useState<Scanned | undefined>();

  const manifest = useMemo(
    () => ({
      name: plan.name,
      owner: session.me.email,
      purpose: plan.purpose,
      scopes: plan.scopes,
      data_classes: plan.data_classes,
      retention_days: Number(plan.retention_days),
      expected_users: Number(plan.expected_users),
      telemetry: plan.telemetry,
      redirect_uris: plan.redirect_uris.split(/\s+/).filter(Boolean),
      ...(plan.consent_purpose ? { consent_purpose: plan.consent_purpose } : {}),
    }),
    [plan, session.me.email],
  );
  const [typed] = useDebouncedValue(manifest, 250);

  const loadApps = useCallback(
    () =>
      session
        .api<{ records: AppView[] }>('/admin/v1/apps?owner=' + encodeURIComponent(session.me.email))
        .then((page) => setApps(page.records)),
    [session],
  );
  useEffect(() => {
    void session.api<Vocabulary>('/admin/v1/admission').then(setVocabulary);
    void loadApps();
  }, [session, loadApps]);
  useEffect(() => {
    let current = true;
    void session.api<Verdict>('/admin/v1/admission', { method: 'POST', body: typed }).then(
      (answer) => current && setVerdict(answer),
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [session, typed]);

  const register = async () => {
    try {
      const app = await session.api<AppView>('/admin/v1/apps', { method: 'POST', body: manifest });
      setOutcome({
        color: 'green',
        text: `${app.name} is registered: ${app.state.replace('_', ' ')}. Client id ${app.client_id}.`,
      });
      setScanned(undefined);
      if (bundle) {
        // Gatehouse scans the bytes itself; the verdict on the app then counts what it found.
        const judged = await session
          .upload<AppView>(
            `/admin/v1/apps/${app.id}/bundle`,
            bundle,
            bundleMediaType(bundle.name) ?? 'application/octet-stream',
          )
          .then(scannedOf, refusedScan);
        setScanned(judged);
        setOutcome({
          color: judged.decision === 'deny' ? 'red' : 'green',
          text:
            judged.decision === 'deny'
              ? `${app.name} is registered (${app.state.replace('_', ' ')}); its bundle is refused.`
              : `${app.name} is registered and its bundle scanned: ${judged.state.replace('_', ' ')}.`,
        });
      }
      await loadApps();
    } catch (error) {
      const text = error instanceof ApiProblem ? error.message : String(error);
      setOutcome({ color: 'red', text });
    }
  };

  const set =
    <K extends keyof typeof plan>(key: K) =>
    (value: (typeof plan)[K]) =>
      setPlan((p) => ({ ...p, [key]: value }));
  const suggestions = vocabulary
    ? plan.scopes.flatMap((scope) => narrowerScopes(scope, vocabulary).map((n) => ({ from: scope, ...n })))
    : [];

  return (
    <Stack>
      <Title order={1}>Register an app</Title>
      <Text>
        This form is your app&apos;s security plan. The admission policy judges it as you type, with the same
        decision <code>gatehouse policy check</code> gives.
      </Text>
      <Grid>
        <Grid.Col span={{ base: 12, md: 7 }}>
          <Paper
            withBorder
            p="md"
            component="form"
            aria-label="Security plan"
            onSubmit={(e) => {
              e.preventDefault();
              void register();
            }}
          >
            <Stack>
              <TextInput
                label="App name"
                description="lower-case letters, digits and dashes"
                value={plan.name}
                onChange={(e) => set('name')(e.currentTarget.value)}
                required
              />
              <Textarea
                label="Purpose"
                description="what the app is for, in a sentence"
                value={plan.purpose}
                onChange={(e) => set('purpose')(e.currentTarget.value)}
                required
              />
              <MultiSelect
                label="Scopes"
                description="each scope opens the fields listed beside it"
                data={Object.entries(vocabulary?.scopes ?? {}).map(([scope, set]) => ({
                  value: scope,
                  label: `${scope} — ${set.fields.join(', ')}`,
                }))}
                value={plan.scopes}
                onChange={set('scopes')}
                searchable
              />
              {suggestions.length > 0 && (
                <Alert color="blue" title="A narrower scope may do">
                  <List>
                    {suggestions.map((s) => (
                      <List.Item key={`${s.from}-${s.scope}`}>
                        Instead of {s.from}, {s.scope} gives {s.fields.join(', ')} only.
                      </List.Item>
                    ))}
                  </List>
                </Alert>
              )}
              <MultiSelect
                label="Data classes"
                description="the most sensitive data the app handles"
                data={vocabulary?.data_classes ?? []}
                value={plan.data_classes}
                onChange={set('data_classes')}
              />
              <Group grow>
                <NumberInput
                  label="Retention (days)"
                  min={0}
                  max={3650}
                  value={plan.retention_days}
                  onChange={set('retention_days')}
                />
                <NumberInput
                  label="Expected users"
                  min={1}
                  value={plan.expected_users}
                  onChange={set('expected_users')}
                />
              </Group>
              <Textarea
                label="Redirect URIs"
                description="one per line"
                value={plan.redirect_uris}
                onChange={(e) => set('redirect_uris')(e.currentTarget.value)}
              />
              <Select
                label="Consent purpose"
                description="contacts are shown only if they consented to it"
                data={vocabulary?.consent_purposes ?? []}
                value={plan.consent_purpose}
                onChange={set('consent_purpose')}
                clearable
              />
              <Checkbox
                label="Sends telemetry to Gatehouse"
                checked={plan.telemetry}
                onChange={(e) => set('telemetry')(e.currentTarget.checked)}
              />
              <FileInput
                label="App bundle"
                description="the app's code as .zip or .tgz; Gatehouse scans it for secrets, direct CRM calls and unpinned dependencies"
                accept=".zip,.tgz,.tar.gz,application/zip,application/gzip"
                value={bundle}
                onChange={setBundle}
                clearable
                clearButtonProps={{ 'aria-label': 'Remove the bundle' }}
                error={bundle && !bundleMediaType(bundle.name) ? 'a bundle is a .zip or a .tgz' : undefined}
              />
              <Group>
                <Button type="submit">Register</Button>
              </Group>
              <div role="status" aria-live="polite">
                {outcome && <Alert color={outcome.color}>{outcome.text}</Alert>}
              </div>
              {scanned && <ScanFindings scanned={scanned} />}
            </Stack>
          </Paper>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Paper withBorder p="md" component="section" aria-labelledby="verdict-title">
            <Title order={2} size="h3" id="verdict-title">
              Admission verdict
            </Title>
            <div aria-live="polite" data-testid="verdict">
              {verdict ? (
                <Stack gap="xs" mt="sm">
                  <Group>
                    <Badge
                      variant="dot"
                      size="lg"
                      color={verdictColor[verdict.decision]}
                      data-decision={verdict.decision}
                    >
                      {verdict.decision}
                    </Badge>
                    <Text>{verdictText[verdict.decision]}</Text>
                  </Group>
                  {verdict.risk_score !== null && (
                    <Text size="sm">Risk score {verdict.risk_score} / 100</Text>
                  )}
                  <RuleList rules={verdict.rules} extra={verdict.errors} />
                  <Text size="xs" c="dimmed">
                    policy version {verdict.policy_version}
                  </Text>
                </Stack>
              ) : (
                <Text>Judging…</Text>
              )}
            </div>
          </Paper>
        </Grid.Col>
      </Grid>
      <Title order={2}>My registrations</Title>
      <Table aria-label="My registrations" striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>App</Table.Th>
            <Table.Th>State</Table.Th>
            <Table.Th>Scopes</Table.Th>
            <Table.Th>Reviewer&apos;s word</Table.Th>
            <Table.Th>Limits</Table.Th>
            <Table.Th>Last used</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {apps.map((app) => (
            <Table.Tr key={app.id}>
              <Table.Td>{app.name}</Table.Td>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>
                <Badge
                  variant="dot"
                  color={app.state === 'approved' ? 'green' : app.state === 'in_review' ? 'orange' : 'gray'}
                >
                  {app.state.replace('_', ' ')}
                </Badge>
              </Table.Td>
              <Table.Td>{app.scopes.map(scopeLabel).join('; ')}</Table.Td>
              <Table.Td>{app.review_reason ?? '—'}</Table.Td>
              <Table.Td>
                {app.constraints
                  ? `${app.constraints.requests_per_minute}/min, ${app.constraints.daily_quota}/day`
                  : '—'}
              </Table.Td>
              <Table.Td>{when(app.last_used_at)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

const findingRows = (scan: ScanSummary) => [
  { label: 'critical findings', value: scan.critical, bad: scan.critical > 0 },
  { label: 'high findings', value: scan.high, bad: scan.high > 0 },
  { label: 'medium findings', value: scan.medium, bad: false },
  { label: 'low findings', value: scan.low, bad: false },
  { label: 'calls a CRM directly', value: scan.bypass ? 'yes' : 'no', bad: scan.bypass },
  { label: 'unpinned dependencies', value: scan.unpinned, bad: scan.unpinned > 0 },
  { label: 'lockfile missing', value: scan.lockfile_missing ? 'yes' : 'no', bad: scan.lockfile_missing },
  { label: 'files not scanned', value: scan.unscanned, bad: scan.unscanned > 0 },
];

/** The server's scan of an uploaded bundle and what admission made of it. */
interface Scanned {
  digest: string | null;
  scan: ScanSummary | null;
  decision: string;
  state: string;
  rules: { id: string; effect: string; reason: string }[];
}

function scannedOf(view: AppView): Scanned {
  return {
    digest: view.bundle_digest ?? null,
    scan: view.scan ?? null,
    decision: view.admission?.decision ?? '—',
    state: view.state,
    rules: view.admission?.rules ?? [],
  };
}

/** A bundle admission refused (403 POLICY_DENIED) still names what the scan found; anything else is thrown. */
function refusedScan(error: unknown): Scanned {
  if (!(error instanceof ApiProblem) || error.body.code !== 'POLICY_DENIED') throw error;
  const body = error.body as { scan?: ScanSummary; bundle_digest?: string; rules?: Scanned['rules'] };
  return {
    digest: body.bundle_digest ?? null,
    scan: body.scan ?? null,
    decision: 'deny',
    state: 'refused',
    rules: body.rules ?? [],
  };
}

function ScanFindings({ scanned }: { scanned: Scanned }) {
  const rules = scanned.rules.filter((rule) => rule.effect !== 'permit');
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="scan-title" data-testid="scan">
      <Title order={3} size="h4" id="scan-title">
        Scan of {scanned.digest?.slice(0, 19) ?? 'the bundle'}
      </Title>
      {scanned.scan && (
        <Table aria-label="Scan findings">
          <Table.Tbody>
            {findingRows(scanned.scan).map((row) => (
              <Table.Tr key={row.label} data-bad={row.bad}>
                <Table.Td>{row.label}</Table.Td>
                <Table.Td fw={row.bad ? 700 : undefined}>{row.value}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Text size="sm" mt="xs">
        Admission: <strong data-decision={scanned.decision}>{scanned.decision}</strong>
      </Text>
      <RuleList rules={rules} />
      <Text size="xs">
        Run <code>gatehouse scan PATH</code> on your copy for each finding with its file and line.
      </Text>
    </Paper>
  );
}
