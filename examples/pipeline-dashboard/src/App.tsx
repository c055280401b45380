import { useEffect, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Tooltip, XAxis, YAxis } from 'recharts';
import { ErrorBanner } from '../../common/ErrorBanner.js';
import { session, type Session } from '../../common/session.js';

// Aggregates only: the dashboard never asks for a record, so its token cannot read one.
const scope = 'read:opportunity.aggregate';

interface Stage {
  stage: string;
  count: number;
  total: number;
}
interface Month {
  month: string;
  total: number;
}

// Aggregate filters name dimensions only; this one is recorded in the audit trail like every other.
const openDeals = "not stage in ('Closed Won', 'Closed Lost')";

let started: Promise<Session | undefined> | undefined;

export function App() {
  const [me, setMe] = useState<Session>();
  const [error, setError] = useState<unknown>();
  const [stages, setStages] = useState<Stage[]>([]);
  const [months, setMonths] = useState<Month[]>([]);
  const [openOnly, setOpenOnly] = useState(false);

  useEffect(() => {
    started ??= session('pipeline-dashboard', scope);
    started.then(setMe, setError);
  }, []);

  const load = async (open = openOnly) => {
    setError(undefined);
    try {
      const querySerializer = { array: { style: 'form', explode: true } } as const;
      const { data } = await me!.crm.GET('/crm/v1/opportunities/aggregate', {
        params: {
          query: { group_by: 'stage', metric: ['count', 'sum(amount)'], ...(open && { filter: openDeals }) },
        },
        querySerializer,
      });
      setStages(
        (data?.groups ?? []).map((group) => ({
          stage: group.stage ?? '(none)',
          count: group.count,
          total: Math.round(group.sum_amount ?? 0),
        })),
      );
      // By month: a coarse date bucket; the gateway refuses exact dates and filters inside a month.
      const byMonth = await me!.crm.GET('/crm/v1/opportunities/aggregate', {
        params: { query: { group_by: 'close_date:month', metric: ['sum(amount)'] } },
        querySerializer,
      });
      setMonths(
        (byMonth.data?.groups ?? []).map((group) => ({
          month: group['close_date:month'] ?? '(none)',
          total: Math.round(group.sum_amount ?? 0),
        })),
      );
    } catch (failure) {
      setError(failure);
    }
  };

  const askForRecords = async () => {
    setError(undefined);
    // Outside the plan on purpose: the gateway refuses, and the app says so.
    await me!.crm.GET('/crm/v1/opportunities', { params: { query: { limit: 5 } } }).catch(setError);
  };

  useEffect(() => {
    if (me) void load();
  }, [me]);

  return (
    <>
      <header>
        <h1>Pipeline dashboard</h1>
        {me ? (
          <span>
            Signed in as <strong data-testid="user">{me.user}</strong>{' '}
            <button className="secondary" onClick={() => void me.signOut()}>
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      <main>
        <ErrorBanner error={error} />
        {!me && !error ? <p className="muted">Signing you in…</p> : null}
        {me ? (
          <section aria-labelledby="by-stage">
            <h2 id="by-stage">Pipeline by stage (sum of amounts)</h2>
            <BarChart width={720} height={320} data={stages} accessibilityLayer>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="stage" />
              <YAxis width={70} tickFormatter={(value: number) => `${value / 1_000_000}M`} />
              <Tooltip />
              <Bar dataKey="total" name="Amount" fill="#0b57d0" />
            </BarChart>
            <table aria-label="Pipeline by stage" data-testid="stages">
              <thead>
                <tr>
                  <th scope="col">Stage</th>
                  <th scope="col">Deals</th>
                  <th scope="col">Amount</th>
                </tr>
              </thead>
              <tbody>
                {stages.map((row) => (
                  <tr key={row.stage}>
                    <td>{row.stage}</td>
                    <td>{row.count}</td>
                    <td>{row.total.toLocaleString('en')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <h2 id="by-month">Pipeline by month of close (sum of amounts)</h2>
            <BarChart width={720} height={280} data={months} accessibilityLayer aria-labelledby="by-month">
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="month" />
              <YAxis width={70} tickFormatter={(value: number) => `${value / 1_000_000}M`} />
              <Tooltip />
              <Bar dataKey="total" name="Amount" fill="#137333" />
            </BarChart>
            <p>
              <label>
                <input
                  type="checkbox"
                  checked={openOnly}
                  onChange={(event) => {
                    setOpenOnly(event.target.checked);
                    void load(event.target.checked);
                  }}
                />{' '}
                Open deals only
              </label>
            </p>
            <p>
              <button onClick={() => void load()}>Refresh</button>{' '}
              <button className="secondary" onClick={() => void askForRecords()}>
                Show the deals behind it
              </button>
            </p>
          </section>
        ) : null}
      </main>
    </>
  );
}
