import { useEffect, useState, type FormEvent } from 'react';
import { ErrorBanner } from '../../common/ErrorBanner.js';
import { session, type Session } from '../../common/session.js';

// The least scopes for the purpose: see my accounts and their contacts (a manager, who may see
// phones, then reads them in notes too; a rep gets them redacted), read and log notes.
const scope = 'read:account.basic read:contact.basic read:contact.reach read:note.basic write:contact.note';

interface Account {
  id: string;
  name?: string | null;
  industry?: string | null;
}
interface Note {
  id: string;
  body?: string | null;
  author?: string | null;
  created_at?: string | null;
}

/** A text value in the gateway's filter syntax ('' for a quote). */
const quoted = (value: string) => `'${value.replaceAll("'", "''")}'`;

let started: Promise<Session | undefined> | undefined;

/** The accounts assigned to me: the session is then narrowed to them (a capability token). */
async function assignedAccounts(crm: Session['crm'], user: string): Promise<string[]> {
  const { data } = await crm.GET('/crm/v1/accounts', {
    params: { query: { fields: ['name'], filter: `owner eq ${quoted(user)}`, limit: 20 } },
  });
  return (data?.records ?? []).map((account) => account.id);
}

export function App() {
  const [me, setMe] = useState<Session>();
  const [error, setError] = useState<unknown>();
  const [accounts, setAccounts] = useState<Account[]>([]);
  const [selected, setSelected] = useState<Account>();
  const [notes, setNotes] = useState<Note[]>([]);
  const [draft, setDraft] = useState('');

  useEffect(() => {
    // Once per page, even under StrictMode's double effects: a code can be redeemed once.
    started ??= session('call-notes', scope, { accounts: assignedAccounts });
    started.then(setMe, setError);
  }, []);

  const run = async (work: () => Promise<void>) => {
    setError(undefined);
    await work().catch(setError);
  };

  const loadAccounts = () =>
    run(async () => {
      // No filter needed: the token opens the accounts assigned to me and no other.
      const { data } = await me!.crm.GET('/crm/v1/accounts', {
        params: { query: { fields: ['name', 'industry'], limit: 20 } },
      });
      setAccounts(data?.records ?? []);
    });

  const loadNotes = (account: Account) =>
    run(async () => {
      setSelected(account);
      const { data } = await me!.crm.GET('/crm/v1/notes', {
        params: {
          query: {
            fields: ['body', 'author', 'created_at'],
            filter: `account_id eq ${quoted(account.id)}`,
            limit: 50,
          },
        },
      });
      setNotes(data?.records ?? []);
    });

  const logNote = (event: FormEvent) => {
    event.preventDefault();
    if (!selected || draft.trim() === '') return;
    void run(async () => {
      await me!.crm.POST('/crm/v1/notes', { body: { body: draft.trim(), account_id: selected.id } });
      setDraft('');
      await loadNotes(selected);
    });
  };

  useEffect(() => {
    if (me) void loadAccounts();
  }, [me]);

  return (
    <>
      <header>
        <h1>Call notes</h1>
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
          <section aria-labelledby="accounts">
            <h2 id="accounts">My accounts</h2>
            <ul>
              {accounts.map((account) => (
                <li key={account.id}>
                  <button
                    className="secondary"
                    aria-pressed={selected?.id === account.id}
                    onClick={() => void loadNotes(account)}
                  >
                    {account.name}
                  </button>{' '}
                  <span className="muted">{account.industry}</span>
                </li>
              ))}
            </ul>
          </section>
        ) : null}
        {selected ? (
          <section aria-labelledby="notes">
            <h2 id="notes">Notes on {selected.name}</h2>
            <form onSubmit={logNote}>
              <label htmlFor="note">Call note</label>
              <textarea id="note" value={draft} onChange={(e) => setDraft(e.target.value)} maxLength={2000} />
              <button type="submit">Log note</button>
            </form>
            <ul aria-label="Notes" data-testid="notes">
              {notes.map((note) => (
                <li key={note.id}>
                  <span>{note.body}</span>{' '}
                  <span className="muted">
                    — {note.author}, {note.created_at?.slice(0, 10)}
                  </span>
                </li>
              ))}
            </ul>
          </section>
        ) : null}
      </main>
    </>
  );
}
